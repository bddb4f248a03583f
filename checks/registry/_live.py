"""The live halves of registry.health-check and registry.debug-loopback (pure, over evidence).

`live_health(ev)` reads `registry.debug-health`; `debug_listeners(ev, port)` reads the debug
server's sockets from `host.discovery` + `host.sockets`. Both return what the check adds to its
configuration verdict: a problem (fail) or None, a note for the message, and observed facts.
"""

from __future__ import annotations

from typing import Any

from auditor.checkapi import Evidence
from auditor.model import JSON

from ._listeners import DISCOVERY, SOCKETS, port_of, process_view, registry_processes, socket_view, sockets_of

HEALTH = "registry.debug-health"
DEBUG_ENV = "REGISTRY_HTTP_DEBUG_ADDR"


def live_health(ev: Evidence) -> tuple[str | None, str, JSON]:
    """(problem, note, observed) from the debug server's /debug/health."""
    state = ev.state(HEALTH)
    if state is None:
        return None, " (/debug/health not checked: evidence not gathered)", None
    if state == "error":
        return None, f" (/debug/health not checked: {ev.reason(HEALTH)})", None
    if state == "not_applicable":
        return None, " (no debug server: /debug/health not checked)", {"debug_health": ev.reason(HEALTH)}
    facts: dict[str, Any] = ev[HEALTH]
    if not facts.get("reachable"):
        return None, f" (/debug/health not reachable: {facts.get('reason')})", facts
    if facts.get("status") == 200:
        return None, f"; {facts['url']} answers 200 (healthy)", facts
    return (f"{facts['url']} answers {facts.get('status')}: {str(facts.get('body') or '').strip()[:300]}",
            "", facts)


def debug_listeners(ev: Evidence, port: int | None) -> tuple[str | None, str, JSON]:
    """(problem, note, observed): the registry's sockets on the debug port that are not loopback."""
    if ev.state(DISCOVERY) is None or ev.state(SOCKETS) is None:
        return None, " (live listener not checked: evidence not gathered)", None
    discovered = ev[DISCOVERY]
    processes = registry_processes(discovered)
    if not processes:
        return _container_debug_listeners(discovered, port)
    override = ((discovered.get("registry") or {}).get("env_overrides") or {}).get(DEBUG_ENV)
    if override and port_of(override):
        port = port_of(override)  # the environment wins over the file
    sockets = ev[SOCKETS]["sockets"]
    held: list[dict[str, Any]] = []
    views = []
    for process in processes:
        mine = [s for s in sockets_of(int(process["pid"]), sockets) if s["port"] == port]
        held += mine
        views.append({"process": process_view(process), "sockets": [socket_view(s) for s in mine]})
    exposed = [s for s in held if not s["loopback"]]
    if exposed:
        shown = ", ".join(f"{s['endpoint']} ({s['table']}, inode {s['inode']})" for s in exposed)
        return f"the debug listener really listens on {shown}", "", views
    if not held:
        return None, f" (no socket on port {port} held by the registry: the debug server is not listening)", views
    return None, "; live listener " + ", ".join(s["endpoint"] for s in held), views


def _container_debug_listeners(discovered: dict[str, Any], port: int | None) -> tuple[str | None, str, JSON]:
    """The same judgement for a containerised registry: the sockets its process holds in the
    container's own network namespace (`listening`, read through /proc/PID/net by discovery)."""
    containers = [c for c in discovered.get("container_runtime") or []
                  if c.get("role") == "registry" and c.get("listening") is not None]
    if not containers:
        return None, " (no running registry found in this namespace: the listener was not verified)", None
    held = [{**s, "container": c.get("name")} for c in containers for s in c["listening"] if s.get("port") == port]
    views = [{"container": c.get("name"), "sockets": [s for s in c["listening"] if s.get("port") == port]}
             for c in containers]
    exposed = [s for s in held if not s.get("loopback")]
    if exposed:
        shown = ", ".join(f"{s['endpoint']} (container {s['container']})" for s in exposed)
        return f"the debug listener really listens on {shown}", "", views
    if not held:
        return None, f" (no socket on port {port} held by the registry container: the debug server is not " \
            "listening)", views
    return None, "; live listener " + ", ".join(f"{s['endpoint']} in container {s['container']}" for s in held), views
