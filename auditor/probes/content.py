"""Content evidence: the registry walk (API or storage), trusted signing material, scan reports.

Probes:
- `registry.content`: every tag with its digest, platforms, signatures and attestations, and
  the largest layer (`largest_layer` {size, repo, digest}, read by tmpfs.size). In inside mode
  straight from the filesystem storage whenever it is readable here (--storage-root, or
  config.registry's storage.filesystem.rootdirectory), else through the registry API; an outside
  audit walks the API. `--content-source api|storage|auto` forces the choice; `source_choice`
  says why.
- `signatures.trust`: the trusted public key PEMs (--cosign-key) and the trusted root JSON
  (--trusted-root), so checks verify offline and `evaluate` re-judges without the files.
- `scans.reports`: the Trivy reports and ignore files of --scan-dir; with --rescan-stale, first
  trivy on the tags whose report is missing, stale or of another digest (`rescan` says what ran,
  or why nothing could).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.content.scandir import read_scan_dir
from auditor.errors import NotApplicable, ProbeError
from auditor.host.discovery import registry_running
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

MAX_KEY_BYTES = 64 * 1024
CONNECTIONS = 32  # the walker's requests in flight, on as many keep-alive connections
MAX_ROOT_BYTES = 4 * 1024 * 1024


async def _registry_config(ctx: ProbeContext) -> dict[str, Any]:
    try:
        facts = await ctx.evidence("config.registry")
    except Exception:  # the config is optional for the API walk
        return {}
    return facts.get("config") or {} if isinstance(facts, dict) else {}


def _config_host(config: dict[str, Any]) -> str:
    http = config.get("http") if isinstance(config.get("http"), dict) else {}
    host = http.get("host") if isinstance(http, dict) else None
    return (urlsplit(str(host)).hostname or "") if host else ""


async def storage_root(ctx: ProbeContext) -> tuple[str, str]:
    """(root directory, how it was found) for the filesystem storage driver."""
    explicit = ctx.target.path("storage_root")
    if explicit:
        return explicit, "--storage-root"
    config = await _registry_config(ctx)
    storage = config.get("storage") if isinstance(config.get("storage"), dict) else {}
    fs = storage.get("filesystem") if isinstance(storage, dict) else None
    if isinstance(fs, dict):
        return str(fs.get("rootdirectory") or "/var/lib/registry"), "config.registry storage.filesystem"
    if isinstance(storage, dict) and storage:
        drivers = [k for k in storage if k not in ("delete", "maintenance", "cache", "redirect", "tag")]
        raise NotApplicable(f"the registry stores content with the {', '.join(drivers) or 'unknown'} driver, "
                            "not filesystem: give the registry's URL to walk it through the API")
    raise NotApplicable("no registry URL, no --storage-root and no filesystem storage in the registry config")


async def _registry_runs_here(ctx: ProbeContext) -> bool:
    """Whether discovery found a running registry (process or container) in this network namespace."""
    try:
        return bool(registry_running(await ctx.evidence("host.discovery")))
    except (ProbeError, NotApplicable):
        return False




async def _readable_storage(ctx: ProbeContext) -> tuple[str, str] | str:
    """(root, how it was found) when the filesystem storage can be read here, else why not."""
    try:
        root, source = await storage_root(ctx)
    except NotApplicable as exc:
        return str(exc)
    v2 = Path(root) / "docker/registry/v2"
    if not v2.is_dir():
        return f"{v2} ({source}) is not a directory here"
    if not os.access(v2, os.R_OK | os.X_OK):
        return f"{v2} ({source}) is not readable by this user"
    return root, source


async def _choose_source(ctx: ProbeContext) -> tuple[str, str]:
    """("api"|"storage", why). `--content-source`: api walks the registry API (needs the URL),
    storage reads the filesystem, auto (default) reads storage in inside mode whenever it is
    readable here (or --storage-root names it), and walks the API otherwise."""
    wanted = str(ctx.target.options.get("content_source") or "auto")
    if wanted == "api":
        if not ctx.target.url:
            raise NotApplicable("--content-source api needs the registry's URL")
        return "api", "--content-source api"
    if wanted == "storage" or not ctx.target.url:
        return "storage", "--content-source storage" if wanted == "storage" else "no registry URL given"
    if ctx.target.path("storage_root"):
        return "storage", "--storage-root given"
    if not ctx.target.inside:
        return "api", "outside audit: the registry API"
    found = await _readable_storage(ctx)
    if isinstance(found, str):
        return "api", f"storage not readable ({found}): the registry API"
    return "storage", "inside audit: the filesystem storage is readable"


@probe("registry.content", shape=shapes.RegistryContent, timeout=3600.0)
async def registry_content(ctx: ProbeContext) -> JSON:
    """Every repository and tag: digests, platforms, signatures, attestations, largest layer."""
    hosts: list[str] = []
    source_used, why = await _choose_source(ctx)
    if source_used == "api":
        # The HTTP stack is imported here only: the storage walk (the inside zipapp) needs none.
        from auditor.content.auth import RegistryAuth
        from auditor.content.transport import PoolFetcher
        from auditor.content.walker import Walker, WalkOptions, stderr_progress
        from auditor.httpclient import make_client, ssl_context

        base = str(ctx.target.url)
        ca_bundle = ctx.target.path("ca_bundle")
        fetcher = PoolFetcher(lambda: ssl_context(ca_bundle), max_connections=CONNECTIONS)  # no connection yet
        token_client = make_client(ca_bundle=ca_bundle, max_connections=2)
        try:
            auth = RegistryAuth(token_client, ctx.credentials, base)
            loop = asyncio.get_running_loop()
            options = WalkOptions(concurrency=CONNECTIONS, deadline=loop.time() + ctx.remaining(),
                                  progress=stderr_progress,
                                  signature_repository=ctx.target.options.get("signature_repository"))
            facts = await Walker(fetcher, base, auth, options).walk()
        finally:
            await fetcher.aclose()
            await token_client.aclose()
        hosts.append(ctx.target.host or "")
        if ctx.target.port not in (None, 443, 80):
            hosts.append(f"{ctx.target.host}:{ctx.target.port}")
    else:
        root, source = await storage_root(ctx)
        if not Path(root).is_dir():
            if source != "--storage-root" and not await _registry_runs_here(ctx):
                raise NotApplicable(
                    f"storage root {root} ({source}) is not on this host and no registry runs in this network "
                    "namespace (an offline review of the config): give the registry's URL to audit its content")
            raise ProbeError(f"storage root {root} ({source}) is not a directory")
        from auditor.content.storage import StorageReader

        reader = StorageReader(root, ctx.target.options.get("signature_repository"))
        facts = await asyncio.to_thread(reader.walk_beside, 0, ctx.remaining())
        facts["storage_root_source"] = source
        if ctx.target.host:
            hosts.append(ctx.target.host)
            if ctx.target.port not in (None, 443, 80):
                hosts.append(f"{ctx.target.host}:{ctx.target.port}")
        config_host = _config_host(await _registry_config(ctx))
        if config_host and config_host not in hosts:
            hosts.append(config_host)
    facts["source_choice"] = why
    facts["hosts"] = [h for h in hosts if h]
    return facts


@probe("signatures.trust", shape=shapes.SignaturesTrust, timeout=10.0)
async def signatures_trust(ctx: ProbeContext) -> JSON:
    """Trusted cosign public keys (PEM text) and the optional sigstore trusted root (JSON text)."""
    keys = []
    errors = []
    for path in ctx.target.cosign_keys:
        try:
            data = Path(path).read_bytes()[:MAX_KEY_BYTES]
            keys.append({"source": path, "pem": data.decode("ascii")})
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{path}: {exc}")
    root_path = ctx.target.path("trusted_root")
    root_json = None
    if root_path:
        try:
            root_json = Path(root_path).read_bytes()[:MAX_ROOT_BYTES].decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{root_path}: {exc}")
    return {"keys": keys, "trusted_root_path": root_path, "trusted_root_json": root_json, "errors": errors}


# With --rescan-stale it waits for the walk, then trivy.
@probe("scans.reports", shape=shapes.ScansReports, timeout=3600.0)
async def scans_reports(ctx: ProbeContext) -> JSON:
    """The Trivy JSON reports and .trivyignore rules of the scan directory (--scan-dir)."""
    path = ctx.target.path("scan_dir")
    if path and not Path(path).is_dir():
        raise ProbeError(f"--scan-dir {path} is not a directory")
    facts = await asyncio.to_thread(read_scan_dir, path)
    request = ctx.target.options.get("rescan_stale")
    if isinstance(request, dict):
        outcome = await _rescan_stale(ctx, facts, request)
        if outcome.get("rescanned"):
            facts = await asyncio.to_thread(read_scan_dir, path)
        facts["rescan"] = outcome
    return facts


async def _rescan_stale(ctx: ProbeContext, facts: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """--rescan-stale: Trivy on the tags whose report is missing, stale or of another digest."""
    from auditor.content.rescan import find_trivy, plan, rescan

    out: dict[str, Any] = {"requested": True, "ran": False, "rescanned": 0, "failed": 0, "tags": []}
    trivy, why = find_trivy(request.get("trivy"))
    if trivy is None:
        out["reason"] = f"{why}: stale reports were judged as found"
        return out
    scan_dir = ctx.target.path("scan_dir")
    if not scan_dir or not ctx.target.url or not ctx.target.host:
        out["reason"] = "needs --scan-dir and the registry's URL (trivy pulls through the registry API)"
        return out
    try:
        content = await ctx.evidence("registry.content")
    except (ProbeError, NotApplicable) as exc:
        out["reason"] = f"the registry's tags could not be listed: {exc}"
        return out
    stale = plan(content, facts, float(request.get("max_age_hours", 48)), dt.datetime.now(dt.UTC))
    host = ctx.target.host if ctx.target.port in (None, 443) else f"{ctx.target.host}:{ctx.target.port}"
    loop = asyncio.get_running_loop()
    results = await rescan(stale, trivy=trivy, registry_host=host, scan_dir=scan_dir, credentials=ctx.credentials,
                           ca_bundle=ctx.target.path("ca_bundle"), deadline=loop.time() + ctx.remaining() - 10)
    out.update(ran=True, trivy=trivy, tags=results, rescanned=sum(r["result"] == "rescanned" for r in results),
               failed=sum(r["result"] != "rescanned" for r in results))
    return out
