"""Inside probes on the registry host: `host.discovery` (what runs, with which configs) and
`host.sockets` (listening TCP sockets and their processes), both read from /proc."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from auditor.errors import NotApplicable
from auditor.host import discovery, docker, sockets
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

DOCKER_BUDGET = 8.0  # the Docker API must not eat the /proc discovery's time (probe timeout 15s)
OVERRIDES = {"registry": "registry_config", "nginx": "nginx_config", "apache": "apache_config"}
FLAGS = {"registry_config": "--registry-config", "nginx_config": "--nginx-config", "apache_config": "--apache-config"}


def _require_inside(ctx: ProbeContext) -> None:
    if not ctx.target.inside:
        raise NotApplicable("inside vantage not requested (run with --inside on the registry host)")


async def _containers(socket: str) -> dict[str, Any]:
    if not os.path.exists(socket):
        return {"socket": socket, "state": "absent", "registries": []}
    try:
        found = await asyncio.wait_for(docker.list_registries(socket), DOCKER_BUDGET)
    except TimeoutError:
        return {"socket": socket, "state": "error", "reason": f"no answer within {DOCKER_BUDGET:g}s",
                "registries": []}
    except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
        return {"socket": socket, "state": "error", "reason": f"{type(exc).__name__}: {exc}", "registries": []}
    return {"socket": socket, "state": "ok", "registries": found}


def merge(procs: dict[str, Any], engine: dict[str, Any], paths: dict[str, str]) -> dict[str, JSON]:
    """Discovery facts: the first of each kind is the one audited; explicit paths override."""
    registries = list(procs["registries"])
    containers = list(engine["registries"])
    registry = registries[0] if registries else (containers[0] if containers else None)
    out: dict[str, JSON] = {
        "netns": procs["netns"],
        "registry": registry,
        "registries": registries,
        "containers": containers,
        "docker": {k: v for k, v in engine.items() if k != "registries"},
        "nginx": procs["nginx"][0] if procs["nginx"] else None,
        "nginx_all": procs["nginx"],
        "apache": procs["apache"][0] if procs["apache"] else None,
        "apache_all": procs["apache"],
        "sources": [f"/proc, processes in network namespace {procs['netns']}",
                    f"Docker Engine API at {engine['socket']}: {engine['state']}"],
    }
    for role, key in OVERRIDES.items():
        explicit = paths.get(key)
        if not explicit:
            continue
        entry = dict(out[role] or {"pid": None})
        if entry.get("config") and entry["config"] != explicit:
            entry["discovered_config"] = entry["config"]
        entry["config"] = explicit
        entry["config_source"] = FLAGS[key]
        out[role] = entry
    return out


@probe("host.discovery", timeout=15.0)
async def host_discovery(ctx: ProbeContext) -> JSON:
    """The running registry, nginx and Apache (own network namespace; Docker API) and their configs."""
    _require_inside(ctx)
    procs, engine = await asyncio.gather(
        asyncio.to_thread(discovery.discover_processes), _containers(docker.DOCKER_SOCKET)
    )
    paths = {k: v for k, v in ctx.target.paths.items() if v}
    return merge(procs, engine, paths)


@probe("host.sockets", timeout=15.0)
async def host_sockets(ctx: ProbeContext) -> JSON:
    """Listening TCP sockets (IPv4 and IPv6) of this network namespace, with their processes."""
    _require_inside(ctx)
    return {"source": "/proc/self/net/tcp, /proc/self/net/tcp6 (state 0A), /proc/PID/fd",
            "sockets": await asyncio.to_thread(sockets.listening)}
