"""`files.stat`: mode and owner of the TLS private keys, the htpasswd files and every config file
(registry, nginx, Apache, with their includes), found from the configs' evidence or given
explicitly (--tls-key, --htpasswd). Never reads a key; reads htpasswd only for hash schemes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from auditor.errors import NotApplicable, ProbeError
from auditor.host import files
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

SOURCES = ("config.registry", "config.nginx", "config.apache")


async def _sources(ctx: ProbeContext) -> tuple[dict[str, Any], dict[str, str]]:
    """(probe -> facts for those that succeeded, probe -> state and reason for the others)."""
    got: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name in SOURCES:
        try:
            got[name] = await ctx.evidence(name)
        except NotApplicable as exc:
            missing[name] = f"not_applicable: {exc}"
        except ProbeError as exc:
            missing[name] = f"error: {exc}"
    return got, missing


def _resolve(path: str, base: str | None) -> str:
    return path if os.path.isabs(path) or not base else os.path.normpath(os.path.join(base, path))


def key_paths(src: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, where it was named) of every TLS private key the configs name."""
    out: list[tuple[str, str]] = []
    apache = src.get("config.apache") or {}
    vhost = apache.get("vhost") or {}
    for path in vhost.get("ssl_certificate_key_file") or []:
        out.append((_resolve(str(path), apache.get("server_root")),
                    f"Apache SSLCertificateKeyFile ({apache.get('path')})"))
    nginx = src.get("config.nginx") or {}
    for server in nginx.get("registry_servers") or []:
        for path in server.get("ssl_certificate_key") or []:
            # nginx resolves a relative key path from its config's directory (the conf prefix)
            out.append((_resolve(str(path), os.path.dirname(str(nginx.get("path") or "/"))),
                        f"nginx ssl_certificate_key ({server.get('where')})"))
    registry = src.get("config.registry") or {}
    http = (registry.get("config") or {}).get("http") or {}
    tls = http.get("tls") if isinstance(http, dict) else None
    if isinstance(tls, dict) and tls.get("key"):
        out.append((str(tls["key"]), f"registry http.tls.key ({registry.get('path')})"))
    return out


def htpasswd_paths(src: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, where it was named) of every htpasswd file: Apache AuthUserFile, nginx
    auth_basic_user_file (of every server proxying the registry), registry auth.htpasswd.path."""
    out: list[tuple[str, str]] = []
    apache = src.get("config.apache") or {}
    seen = set()
    for access in apache.get("v2_access_by_uri") or [apache.get("v2_access") or {}]:
        value = ((access or {}).get("auth_user_file") or {}).get("value")
        if value and value not in seen:
            seen.add(value)
            out.append((_resolve(str(value).strip('"'), apache.get("server_root")),
                        f"Apache AuthUserFile ({(access.get('auth_user_file') or {}).get('where')})"))
    nginx = src.get("config.nginx") or {}
    for server in nginx.get("registry_servers") or []:
        for path in server.get("auth_basic_user_files") or []:
            out.append((_resolve(str(path), os.path.dirname(str(nginx.get("path") or "/"))),
                        f"nginx auth_basic_user_file ({server.get('where')})"))
    registry = src.get("config.registry") or {}
    auth = (registry.get("config") or {}).get("auth") or {}
    htpasswd = auth.get("htpasswd") if isinstance(auth, dict) else None
    if isinstance(htpasswd, dict) and htpasswd.get("path"):
        out.append((str(htpasswd["path"]), f"registry auth.htpasswd.path ({registry.get('path')})"))
    return out


def certificate_paths(src: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, where it was named) of every TLS certificate file: Apache SSLCertificateFile, nginx
    ssl_certificate, registry http.tls.certificate (judged with the configs: whoever writes them
    swaps the identity clients trust)."""
    out: list[tuple[str, str]] = []
    apache = src.get("config.apache") or {}
    for path in (apache.get("vhost") or {}).get("ssl_certificate_file") or []:
        out.append((_resolve(str(path), apache.get("server_root")), "Apache SSLCertificateFile"))
    nginx = src.get("config.nginx") or {}
    for server in nginx.get("registry_servers") or []:
        for path in server.get("ssl_certificate") or []:
            out.append((_resolve(str(path), os.path.dirname(str(nginx.get("path") or "/"))),
                        f"nginx ssl_certificate ({server.get('where')})"))
    registry = src.get("config.registry") or {}
    http = (registry.get("config") or {}).get("http") or {}
    tls = http.get("tls") if isinstance(http, dict) else None
    if isinstance(tls, dict) and tls.get("certificate"):
        out.append((str(tls["certificate"]), f"registry http.tls.certificate ({registry.get('path')})"))
    return out


def config_paths(src: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, role) of every config file: the registry's, and nginx's and Apache's with includes,
    and the TLS certificates they name."""
    out: list[tuple[str, str]] = []
    registry = src.get("config.registry") or {}
    if registry.get("path"):
        out.append((str(registry["path"]), "registry config"))
    for name, role in (("config.nginx", "nginx config"), ("config.apache", "Apache config")):
        facts = src.get(name) or {}
        listed = [str(f.get("path")) for f in facts.get("files") or [] if isinstance(f, dict) and f.get("path")]
        if not listed and facts.get("path"):
            listed = [str(facts["path"])]
        out += [(path, role) for path in listed]
    return out + certificate_paths(src)


def _unique(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for path, source in pairs:
        seen.setdefault(path, source)
    return list(seen.items())


def gather(src: dict[str, Any], missing: dict[str, str], explicit_key: str | None,
           explicit_htpasswd: str | None) -> dict[str, JSON]:
    keys = [(explicit_key, "--tls-key")] if explicit_key else key_paths(src)
    htpasswds = [(explicit_htpasswd, "--htpasswd")] if explicit_htpasswd else htpasswd_paths(src)
    return {
        "tls_keys": [files.stat_facts(p, s) for p, s in _unique(keys)],
        "htpasswd": [files.htpasswd_facts(p, s) for p, s in _unique(htpasswds)],
        "configs": [files.stat_facts(p, s) for p, s in _unique(config_paths(src))],
        "sources": sorted(src),
        "sources_unavailable": missing,
    }


@probe("files.stat", shape=shapes.FilesStat, timeout=20.0)
async def files_stat(ctx: ProbeContext) -> JSON:
    """Mode and owner of TLS keys, htpasswd files (and their hash schemes) and config files."""
    if not ctx.target.inside:
        raise NotApplicable("inside vantage not requested (run with --inside on the registry host)")
    src, missing = await _sources(ctx)
    return await asyncio.to_thread(gather, src, missing, ctx.target.path("tls_key"), ctx.target.path("htpasswd"))
