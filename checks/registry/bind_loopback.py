"""registry.bind-loopback: the registry's config AND its live sockets keep it on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, warned
from auditor.judge.netaddr import parse_listen
from auditor.model import Severity, Vantage

from ._config import PROBE as CONFIG_PROBE
from ._config import config_facts, effective, raw, subject
from ._listeners import (
    DISCOVERY,
    SOCKETS,
    port_of,
    process_view,
    registry_processes,
    socket_view,
    sockets_of,
)

ADDR_ENV = "REGISTRY_HTTP_ADDR"


def effective_addr(config: dict[str, Any], registry: dict[str, Any] | None) -> tuple[str, str]:
    """(http.addr in effect, where it comes from): the environment override wins over the file."""
    env = (registry or {}).get("env_overrides") or {}
    if env.get(ADDR_ENV):
        return str(env[ADDR_ENV]), f"{ADDR_ENV} in the registry's environment"
    value = effective(config, "http.addr")
    return str(value.value), value.describe()


@check(
    id="registry.bind-loopback",
    title="Registry listens on loopback only",
    severity=Severity.CRITICAL,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(CONFIG_PROBE, DISCOVERY, SOCKETS),
    guide="Registry Configuration: http.addr",
    rationale="The registry itself serves /v2/ in plain HTTP, and without the proxy's authentication: "
    "bound to a routable address it bypasses TLS and auth for every host that can reach the port.",
    passes_when="http.addr (the REGISTRY_HTTP_ADDR override included) is a loopback address AND every "
    "listening socket the registry process holds (read from /proc/net/tcp and tcp6) is loopback; a "
    "containerised registry's published ports count, with their host IPs",
    remediation="Set http.addr: 127.0.0.1:5000 in config.yml (publish a container's port as "
    "127.0.0.1:5000:5000) and restart the registry.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1", "CIS Docker Benchmark 5.13 (bind incoming traffic to a specific "
                "host interface)"),
)
def bind_loopback(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    discovered = ev[DISCOVERY]
    primary = discovered.get("registry") or {}
    addr, addr_source = effective_addr(facts["config"], primary)
    listen = parse_listen(addr)
    config_ok = bool(listen and listen.loopback)
    config_problem = None if config_ok else (
        f"http.addr {addr!r} is not a host:port address" if listen is None
        else f"http.addr {addr!r} binds {'every interface' if listen.all_interfaces else listen.host}")
    present, debug_addr = raw(facts["config"], "http.debug.addr")
    debug_port = port_of(debug_addr) if present else None
    judged = False
    for container in discovered.get("containers") or []:
        judged = True
        yield from _container(container, addr, addr_source, config_problem)
    processes = registry_processes(discovered)
    if processes:
        sockets = ev[SOCKETS]["sockets"]
        for process in processes:
            judged = True
            if process.get("config") and process["config"] != facts.get("path"):
                # another registry in this namespace: its own config was not read, its sockets were
                yield from _process(process, sockets, debug_port, "(not read)",
                                    f"{process['config']} (config.registry read {facts.get('path')})", None)
            else:
                yield from _process(process, sockets, debug_port, addr, addr_source, config_problem)
    if not judged:
        # Nothing runs here (an offline review of a config file, or a registry this namespace cannot
        # see): the config part is judged; the socket part cannot be, which is said, never passed.
        observed = {"http.addr": addr, "addr_source": addr_source, "discovery": discovered.get("sources")}
        if config_problem:
            yield failed(subject(facts), f"{config_problem}; no running registry process was found in this "
                         "network namespace to confirm its sockets", observed=observed,
                         expected="http.addr on loopback, and a registry listening on loopback only")
        else:
            yield warned(subject(facts), f"http.addr {addr!r} is loopback, but no running registry process was found "
                         "in this network namespace (nor a registry container): its sockets were not checked "
                         "(run on the registry host, in its network namespace)", observed=observed,
                         expected="a running registry listening on loopback only")


def _process(process: dict[str, Any], sockets: list[dict[str, Any]], debug_port: int | None, addr: str,
             addr_source: str, config_problem: str | None) -> Iterator[Outcome]:
    pid = int(process["pid"])
    held = [s for s in sockets_of(pid, sockets) if s["port"] != debug_port]
    where = str(process.get("config") or f"registry pid {pid}")
    exposed = [s for s in held if not s["loopback"]]
    observed = {"http.addr": addr, "addr_source": addr_source, "process": process_view(process),
                "sockets": [socket_view(s) for s in held], "non_loopback": [socket_view(s) for s in exposed]}
    expected = {"http.addr": "127.0.0.1:<port> or [::1]:<port>", "sockets": "loopback only"}
    problems = [config_problem] if config_problem else []
    if exposed:
        problems.append(f"pid {pid} ({process.get('cmdline')}) listens on "
                        + ", ".join(f"{s['endpoint']} ({s['table']}, inode {s['inode']})" for s in exposed))
    if problems:
        yield failed(where, "; ".join(problems), observed=observed, expected=expected)
    elif not held:
        yield errored(where, f"registry pid {pid} holds no listening socket (other than the debug server): "
                      "cannot confirm where it listens", observed=observed, expected=expected)
    else:
        head = f"http.addr {addr} is loopback and " if addr != "(not read)" else ""
        yield passed(where, f"{head}pid {pid} listens only on " + ", ".join(s["endpoint"] for s in held),
                     observed=observed, expected=expected)


def _container(container: dict[str, Any], addr: str, addr_source: str,
               config_problem: str | None) -> Iterator[Outcome]:
    info = container.get("container") or {}
    where = f"container {info.get('name')}"
    ports = container.get("published_ports") or []
    exposed = [p for p in ports if not _loopback_ip(str(p.get("host_ip") or ""))]
    observed = {"http.addr": addr, "addr_source": addr_source, "container": info,
                "published_ports": ports, "non_loopback": exposed}
    expected = {"published_ports": "127.0.0.1:<port>:<port> (or none)"}
    if info.get("network_mode") == "host" and config_problem:
        yield failed(where, f"host network mode and {config_problem}", observed=observed, expected=expected)
    elif exposed:
        yield failed(where, "published on " + ", ".join(str(p["endpoint"]) for p in exposed)
                     + " (every address when the host IP is empty)", observed=observed, expected=expected)
    else:
        shown = ", ".join(str(p["endpoint"]) for p in ports) or "no published port"
        yield passed(where, f"container publishes only on loopback ({shown})", observed=observed,
                     expected=expected)


def _loopback_ip(host_ip: str) -> bool:
    listen = parse_listen(f"[{host_ip}]:1" if ":" in host_ip else f"{host_ip}:1")
    return bool(host_ip) and bool(listen and listen.loopback)
