"""`config.registry`: the registry's configuration file, parsed, with facts about files it names."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from auditor import bounded
from auditor.errors import NotApplicable, ProbeError
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

DEFAULT_PATHS = ("/etc/docker/registry/config.yml", "/etc/docker-registry/config.yml")
MAX_CONFIG_BYTES = 1024 * 1024


async def registry_config_path(ctx: ProbeContext) -> tuple[str, str]:
    """(path, how it was found): the explicit option, then discovery, then the default paths."""
    explicit = ctx.target.path("registry_config")
    if explicit:
        return explicit, "--registry-config"
    discovered = None
    if ctx.target.inside:
        try:
            discovered = await ctx.evidence("host.discovery")
        except Exception:  # discovery is optional: fall back to the default paths
            discovered = None
    if isinstance(discovered, dict):
        registry = discovered.get("registry") or {}
        if registry.get("config"):
            return str(registry["config"]), str(registry.get("config_source", "discovered"))
        if not registry:
            raise NotApplicable(unused_default_config(discovered))
    for path in DEFAULT_PATHS:
        if Path(path).is_file():
            return path, "default path"
    raise NotApplicable(
        "no registry config found (none given with --registry-config, none discovered, none at "
        + " or ".join(DEFAULT_PATHS) + ")"
    )


def unused_default_config(discovered: dict[str, Any]) -> str:
    """Why no registry config is judged on a host where discovery found no registry: a packaged
    default config that no process uses is not the deployment (it is named, never judged)."""
    engine = discovered.get("docker") or {}
    where = (f"no registry process in this network namespace, no registry container at the Docker Engine "
             f"API ({engine.get('socket') or 'no socket'}: {engine.get('state', 'not asked')})")
    present = [p for p in DEFAULT_PATHS if Path(p).is_file()]
    if present:
        return (f"{', '.join(present)} exists but no process uses it ({where}): it is not judged as the "
                "deployment (give --registry-config to review a config file, or DOCKER_HOST to reach the engine "
                "that runs the registry)")
    return f"no registry found ({where}); give --registry-config to review a config file"


def file_facts(path: str) -> dict[str, JSON]:
    """Existence, type, mode and owner of a file, without reading it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"path": path, "exists": False, "error": exc.strerror}
    return {
        "path": path,
        "exists": True,
        "is_file": stat.S_ISREG(st.st_mode),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
    }


def certificate_facts(path: str) -> dict[str, JSON]:
    """Certificates in a PEM bundle: subject, validity (so checks judge expiry at their own time)."""
    facts = file_facts(path)
    if not facts.get("exists"):
        return facts
    try:
        data = Path(path).read_bytes()[:MAX_CONFIG_BYTES]
        facts["certificates"] = _certificates(data)
    except (OSError, ValueError) as exc:
        facts["parse_error"] = f"not a PEM certificate bundle: {exc}"
    return facts


def _certificates(data: bytes) -> list[JSON]:
    """Subject and validity of each certificate; with `cryptography` when it is installed, else pure
    Python (the gather-only zipapp on a bare host): the same facts either way."""
    try:
        from cryptography import x509
    except ImportError:
        from auditor import der

        return list(der.certificates(data))
    return [
        {
            "subject": cert.subject.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        }
        for cert in x509.load_pem_x509_certificates(data)
    ]


def _plain(value: Any) -> JSON:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def read_registry_config(path: str, source: str) -> dict[str, JSON]:
    """Parse the config at `path`. A YAML error is a fact (config-valid fails), not a probe error."""
    facts: dict[str, JSON] = {"path": path, "source": source, "file": file_facts(path)}
    try:
        raw = bounded.read_bytes(path, max_bytes=MAX_CONFIG_BYTES, what="registry config")
    except bounded.InputError as exc:
        raise ProbeError(f"cannot read {exc}") from None
    try:
        parsed = bounded.load_yaml(raw, f"registry config {path}")
    except bounded.InputError as exc:
        facts["parse_error"] = exc.reason
        return facts
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        facts["parse_error"] = f"{where}{getattr(exc, 'problem', None) or exc}"
        return facts
    if not isinstance(parsed, dict):
        facts["parse_error"] = f"top level is {type(parsed).__name__}, not a mapping"
        return facts
    config = _plain(parsed)
    facts["config"] = config
    auth = config.get("auth") if isinstance(config.get("auth"), dict) else {}
    token = auth.get("token") if isinstance(auth.get("token"), dict) else None
    if token and isinstance(token.get("rootcertbundle"), str):
        facts["rootcertbundle"] = certificate_facts(token["rootcertbundle"])
    htpasswd = auth.get("htpasswd") if isinstance(auth.get("htpasswd"), dict) else None
    if htpasswd and isinstance(htpasswd.get("path"), str):
        facts["htpasswd"] = file_facts(htpasswd["path"])
    return facts


@probe("config.registry", shape=shapes.ConfigRegistry, timeout=10.0)
async def registry_config(ctx: ProbeContext) -> JSON:
    """The registry's config file: where it was found, its parsed content, referenced files."""
    path, source = await registry_config_path(ctx)
    return read_registry_config(path, source)
