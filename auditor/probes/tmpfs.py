"""`host.tmpfs`: nginx's temp paths (proxy_temp_path for pulls, client_body_temp_path for pushes)
resolved to their mounts in nginx's own mount namespace, with sizes and the fstab entries."""

from __future__ import annotations

import asyncio
import os
import posixpath
from typing import Any

from auditor.errors import NotApplicable, ProbeError
from auditor.host import mounts, procfs
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

DEFAULT_FSTAB = "/etc/fstab"
TEMP_DIRECTIVES = ("proxy_temp_path", "client_body_temp_path")


def _nginx_pid(nginx_facts: dict[str, Any], discovered: dict[str, Any] | None) -> int | None:
    if nginx_facts.get("pid"):
        return int(nginx_facts["pid"])
    found = (discovered or {}).get("nginx") or {}
    return int(found["pid"]) if found.get("pid") else None


def temp_paths(nginx_facts: dict[str, Any]) -> list[dict[str, JSON]]:
    """(directive, path) pairs to judge: the registry server's values, and any other server's."""
    rows: list[dict[str, JSON]] = []
    seen: set[tuple[str, str]] = set()
    for directive in TEMP_DIRECTIVES:
        if nginx_facts.get(directive):
            seen.add((directive, str(nginx_facts[directive])))
            rows.append({"directive": directive, "path": str(nginx_facts[directive])})
    for server in nginx_facts.get("registry_servers") or []:
        for directive in TEMP_DIRECTIVES:
            entry = (server.get("directives") or {}).get(directive) or {}
            path = entry.get("path")
            if path and (directive, str(path)) not in seen:
                seen.add((directive, str(path)))
                rows.append({"directive": directive, "path": str(path), "server": server.get("where")})
    return rows


def describe(paths: list[dict[str, JSON]], mountinfo: str, view: str, root: str,
             fstab_text: str | None, fstab_path: str, memory: int | None) -> dict[str, JSON]:
    """Facts for each temp path: its mount, the mount's size, and fstab entries for the mount point.

    `root` is the prefix through which the viewing process's files are reached (/proc/PID/root).
    """
    table = mounts.parse_mountinfo(mountinfo)
    fstab = mounts.parse_fstab(fstab_text) if fstab_text is not None else []
    out = []
    for row in paths:
        path = str(row["path"])
        real = mounts.resolve_in_root(root, path)
        seen_path = os.path.join(root, real.lstrip("/"))
        entry: dict[str, JSON] = {**row, "exists": os.path.isdir(seen_path)}
        if real != posixpath.normpath(path):
            entry["resolved"] = real
        mount = mounts.mount_for(table, real)
        if mount is None:
            entry["mount"] = None
        else:
            facts = mount.to_json()
            size_option = mount.super_option("size")
            facts["size_option"] = size_option
            facts["size_option_bytes"] = mounts.size_bytes(size_option, memory)
            try:
                stat = mounts.statvfs_facts(os.path.join(root, mount.mountpoint.lstrip("/")))
                facts["size_bytes"] = stat["total_bytes"]
                facts["available_bytes"] = stat["available_bytes"]
            except OSError as exc:
                facts["size_bytes"] = facts["size_option_bytes"]
                facts["statvfs_error"] = exc.strerror
            entry["mount"] = facts
            matches = [e for e in fstab if e.file == mount.mountpoint]
            entry["fstab"] = [
                {**e.to_json(), "size_bytes": mounts.size_bytes(e.option("size"), memory)} for e in matches
            ]
        out.append(entry)
    return {"view": view, "fstab_path": fstab_path, "fstab_readable": fstab_text is not None,
            "memory_bytes": memory, "paths": out}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 20)
    except OSError:
        return None


async def _no_nginx_reason(ctx: ProbeContext, why: str) -> str:
    """What applies when no nginx buffers requests: the tmpfs is for nginx's temp files only."""
    try:
        apache = await ctx.evidence("config.apache")
    except (NotApplicable, ProbeError):
        apache = None
    if isinstance(apache, dict) and apache.get("vhost"):
        return (f"no nginx buffers requests on this host ({why}): the guide's tmpfs holds nginx's temp paths, and "
                f"Apache ({apache.get('path')}) proxies with mod_proxy, which streams request and response bodies "
                "without temp files; its request-body limit and proxy timeout are judged by proxy.apache-proxy")
    return f"no nginx buffers requests on this host ({why}): the guide's tmpfs holds nginx's temp paths only"


@probe("host.tmpfs", shape=shapes.HostTmpfs, timeout=20.0)
async def host_tmpfs(ctx: ProbeContext) -> JSON:
    """nginx's temp paths: the mount each lives on (fstype, flags, size) and its fstab entries."""
    try:
        nginx_facts = await ctx.evidence("config.nginx")
    except NotApplicable as exc:
        raise NotApplicable(await _no_nginx_reason(ctx, str(exc))) from None
    try:
        discovered = await ctx.evidence("host.discovery")
    except Exception:  # the pid in config.nginx usually suffices
        discovered = None
    paths = temp_paths(nginx_facts)
    if not paths:
        raise ProbeError("config.nginx names no proxy_temp_path / client_body_temp_path")
    pid = _nginx_pid(nginx_facts, discovered)
    if pid is not None and os.path.exists(f"{procfs.PROC}/{pid}/mountinfo"):
        info_path, root = f"{procfs.PROC}/{pid}/mountinfo", f"{procfs.PROC}/{pid}/root"
        view = f"mount namespace of nginx pid {pid} ({info_path})"
    else:
        info_path, root = f"{procfs.PROC}/self/mountinfo", "/"
        view = "the auditor's own mount namespace (no running nginx was found: its view may differ)"
    mountinfo = _read(info_path)
    if mountinfo is None:
        raise ProbeError(f"cannot read {info_path}")
    fstab_path = ctx.target.path("fstab") or DEFAULT_FSTAB
    fstab_text = _read(fstab_path)
    memory = mounts.memory_bytes()
    facts = await asyncio.to_thread(describe, paths, mountinfo, view, root, fstab_text, fstab_path, memory)
    facts["nginx_pid"] = pid
    facts["nginx_config"] = nginx_facts.get("path")
    found = (discovered or {}).get("nginx") or {}
    if found.get("container") and (not pid or found.get("pid") == pid):
        # a containerised nginx: its tmpfs mounts are part of the container's definition
        facts["container"] = {"name": (found["container"] or {}).get("name"), "tmpfs": found.get("tmpfs") or []}
    return facts
