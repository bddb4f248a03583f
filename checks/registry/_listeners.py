"""Shared reading of the registry's live listeners for registry.bind-loopback and debug-loopback.

Pure helpers over the evidence of `host.discovery` and `host.sockets`: which listening sockets
belong to which registry process, and which of them are not loopback.
"""

from __future__ import annotations

from typing import Any

from auditor.judge.netaddr import parse_listen
from auditor.model import JSON

DISCOVERY = "host.discovery"
SOCKETS = "host.sockets"


def registry_processes(discovered: dict[str, Any]) -> list[dict[str, Any]]:
    """Every registry process found in the auditor's namespace (the explicit-config entry too)."""
    found = [r for r in discovered.get("registries") or [] if r.get("pid")]
    primary = discovered.get("registry") or {}
    if not found and primary.get("pid") and not primary.get("container"):
        found = [primary]
    return found


def sockets_of(pid: int, sockets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in sockets if any(int(p["pid"]) == pid for p in s.get("processes") or [])]


def socket_view(sock: dict[str, Any]) -> dict[str, JSON]:
    return {"endpoint": sock["endpoint"], "table": sock["table"], "inode": sock["inode"],
            "loopback": sock["loopback"]}


def process_view(process: dict[str, Any]) -> dict[str, JSON]:
    return {"pid": process.get("pid"), "cmdline": process.get("cmdline"), "exe": process.get("exe"),
            "config": process.get("config")}


def port_of(addr: Any) -> int | None:
    listen = parse_listen(str(addr)) if addr else None
    return listen.port if listen else None
