"""Inside probes on the registry's storage (filesystem driver): `storage.layout` (manifests,
largest layer, uploads, unreferenced blobs; read-only walk) and `storage.filesystem` (statvfs)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from auditor.errors import NotApplicable, ProbeError
from auditor.host import docker, mounts, procfs, storage_layout
from auditor.host.discovery import registry_running
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

DEFAULT_ROOT = "/var/lib/registry"
ROOT_ENV = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"


def storage_root(config_facts: dict[str, Any] | None, registry: dict[str, Any] | None,
                 explicit: str | None, proc: str = procfs.PROC) -> dict[str, JSON]:
    """Where the registry's filesystem storage is, on this host, and how that was decided.

    Order: --storage-root; the registry's environment override; config storage.filesystem.
    rootdirectory (default /var/lib/registry). A container's path is mapped through its mounts,
    a process's through /proc/PID/root when it is not visible directly. Raises NotApplicable
    when the storage driver is not `filesystem`.
    """
    if explicit:
        return {"path": explicit, "source": "--storage-root"}
    registry = registry or {}
    config = (config_facts or {}).get("config") or {}
    storage: dict[str, Any] = config["storage"] if isinstance(config.get("storage"), dict) else {}
    drivers = [k for k in storage if k not in ("delete", "maintenance", "cache", "redirect", "tag")]
    env = registry.get("env_overrides") or {}
    if ROOT_ENV in env:
        path, source = str(env[ROOT_ENV]), f"{ROOT_ENV} in the registry's environment"
    elif drivers and drivers[0] != "filesystem":
        raise NotApplicable(f"storage driver is {drivers[0]!r}, not filesystem: no disk layout to read")
    else:
        section = storage["filesystem"] if isinstance(storage.get("filesystem"), dict) else {}
        where = (config_facts or {}).get("path", "the config")
        if section.get("rootdirectory"):
            path, source = str(section["rootdirectory"]), f"storage.filesystem.rootdirectory in {where}"
        else:
            path, source = DEFAULT_ROOT, "registry default rootdirectory (key absent)"
    if registry.get("container"):
        mapped = docker.host_path(list(registry.get("mounts") or []), path)
        if mapped is None:
            raise ProbeError(f"container storage {path} is not on a mount: it lives in the container's "
                             "writable layer (and is lost when the container is removed)")
        return {"path": mapped[0], "source": f"{source}; container path {path} via {mapped[1]['type']} mount"}
    if not os.path.isdir(path) and registry.get("pid"):
        seen = procfs.root_path(int(registry["pid"]), path, proc)
        if os.path.isdir(seen):
            return {"path": seen, "source": f"{source}; through /proc/{registry['pid']}/root"}
    return {"path": path, "source": source}


async def _root(ctx: ProbeContext) -> dict[str, JSON]:
    if not ctx.target.inside and not ctx.target.path("storage_root"):
        raise NotApplicable("inside vantage not requested (run with --inside on the registry host)")
    explicit = ctx.target.path("storage_root")
    config_facts = registry = found = None
    if not explicit:
        config_facts = await ctx.evidence("config.registry")
        try:
            found = await ctx.evidence("host.discovery")
            registry = found.get("registry") if isinstance(found, dict) else None
        except (ProbeError, NotApplicable):
            registry = None
    root = storage_root(config_facts, registry, explicit)
    if not os.path.isdir(str(root["path"])):
        if not explicit and not registry_running(found):
            raise NotApplicable(
                f"storage root {root['path']} ({root['source']}) is not on this host and no registry runs in this "
                "network namespace (an offline review of the config): storage not judged; give --storage-root")
        raise ProbeError(f"storage root {root['path']} ({root['source']}) is not a readable directory")
    return root


@probe("storage.layout", shape=shapes.StorageLayout, timeout=120.0)
async def storage_layout_probe(ctx: ProbeContext) -> JSON:
    """The filesystem driver's layout: largest layer and image, uploads, unreferenced blobs."""
    root = await _root(ctx)
    facts = await asyncio.to_thread(storage_layout.scan, str(root["path"]))
    facts["root_source"] = root["source"]
    return facts


@probe("storage.filesystem", shape=shapes.StorageFilesystem, timeout=10.0)
async def storage_filesystem(ctx: ProbeContext) -> JSON:
    """Size, used and available bytes of the filesystem holding the storage root (statvfs)."""
    root = await _root(ctx)
    facts = await asyncio.to_thread(mounts.statvfs_facts, str(root["path"]))
    return {"path": root["path"], "source": root["source"], **facts}
