"""Inside probes on the registry host: `host.discovery` (what runs, with which configs) and
`host.sockets` (listening TCP sockets and their processes), both read from /proc."""

from __future__ import annotations

import asyncio
from typing import Any

from auditor.errors import NotApplicable
from auditor.host import discovery, docker, sockets
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

DOCKER_BUDGET = 8.0  # the Docker API must not eat the /proc discovery's time (probe timeout 15s)
OVERRIDES = {"registry": "registry_config", "nginx": "nginx_config", "apache": "apache_config"}
FLAGS = {"registry_config": "--registry-config", "nginx_config": "--nginx-config", "apache_config": "--apache-config"}


def _require_inside(ctx: ProbeContext) -> None:
    if not ctx.target.inside:
        raise NotApplicable("inside vantage not requested (run with --inside on the registry host)")


async def _containers(endpoints: list[docker.Endpoint]) -> dict[str, Any]:
    """The first engine endpoint that exists and answers; its registry and nginx containers."""
    empty: dict[str, Any] = {"registries": [], "nginx": [], "runtime": []}
    present = [e for e in endpoints if e.exists()]
    if not present:
        names = ", ".join(f"{e.label} ({e.source})" for e in endpoints)
        return {"socket": endpoints[0].label if endpoints else None, "state": "absent",
                "reason": f"no Docker Engine API socket at {names}", **empty}
    errors = []
    for endpoint in present:
        where = {"socket": endpoint.label, "endpoint_source": endpoint.source}
        try:
            found = await asyncio.wait_for(docker.list_containers(endpoint), DOCKER_BUDGET)
        except TimeoutError:
            errors.append({**where, "state": "error", "reason": f"no answer within {DOCKER_BUDGET:g}s"})
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append({**where, "state": "error", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        return {**where, "state": "ok", **found}
    return {**errors[0], "also_tried": errors[1:], **empty}


def engine_endpoints() -> list[docker.Endpoint] | str:
    try:
        return docker.engine_endpoints()
    except ValueError as exc:
        return str(exc)


def merge(procs: dict[str, Any], engine: dict[str, Any], paths: dict[str, str]) -> dict[str, JSON]:
    """Discovery facts: the first of each kind is the one audited; explicit paths override."""
    containers = list(engine.get("registries") or [])
    nginx_containers = list(engine.get("nginx") or [])
    # a container on the host network is also a process here: its container facts win
    in_containers = {c.get("pid") for c in (*containers, *nginx_containers) if c.get("pid")}
    registries = [r for r in procs["registries"] if r.get("pid") not in in_containers]
    nginx_procs = [n for n in procs["nginx"] if n.get("pid") not in in_containers]
    registry = registries[0] if registries else (containers[0] if containers else None)
    nginx_all = [*nginx_procs, *nginx_containers]
    out: dict[str, JSON] = {
        "netns": procs["netns"],
        "registry": registry,
        "registries": registries,
        "containers": containers,
        "container_runtime": list(engine.get("runtime") or []),
        "docker": {k: v for k, v in engine.items() if k not in ("registries", "nginx", "runtime")},
        "nginx": nginx_all[0] if nginx_all else None,
        "nginx_all": nginx_all,
        "apache": procs["apache"][0] if procs["apache"] else None,
        "apache_all": procs["apache"],
        "sources": [f"/proc, processes in network namespace {procs['netns']}",
                    f"Docker Engine API at {engine.get('socket')}: {engine['state']}"
                    + (f" ({engine['reason']})" if engine.get("reason") else "")],
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


@probe("host.discovery", shape=shapes.HostDiscovery, timeout=15.0)
async def host_discovery(ctx: ProbeContext) -> JSON:
    """The running registry, nginx and Apache (own network namespace; Docker API) and their configs."""
    _require_inside(ctx)
    endpoints = engine_endpoints()
    if isinstance(endpoints, str):
        procs = await asyncio.to_thread(discovery.discover_processes)
        engine: dict[str, Any] = {"socket": None, "state": "error", "reason": endpoints}
    else:
        procs, engine = await asyncio.gather(asyncio.to_thread(discovery.discover_processes),
                                             _containers(endpoints))
        for container in engine.get("runtime") or []:
            if container.get("pid"):  # the container's own network namespace, read through /proc/PID/net
                container["listening"] = await asyncio.to_thread(sockets.of_process, int(container["pid"]))
    paths = {k: v for k, v in ctx.target.paths.items() if v}
    return merge(procs, engine, paths)


@probe("host.sockets", shape=shapes.HostSockets, timeout=15.0)
async def host_sockets(ctx: ProbeContext) -> JSON:
    """Listening TCP sockets (IPv4 and IPv6) of this network namespace, with their processes."""
    _require_inside(ctx)
    return {"source": "/proc/self/net/tcp, /proc/self/net/tcp6 (state 0A), /proc/PID/fd",
            "sockets": await asyncio.to_thread(sockets.listening)}
