"""registry.debug-loopback: Registry debug server listens on loopback only.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.judge.netaddr import parse_listen
from auditor.model import Severity, Vantage

from ._config import PROBE, config_facts, raw, subject
from ._listeners import DISCOVERY, SOCKETS, port_of
from ._live import debug_listeners


@check(
    id="registry.debug-loopback",
    title="Registry debug server listens on loopback only",
    severity=Severity.HIGH,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(PROBE, DISCOVERY, SOCKETS),
    guide="beyond the guide (http.debug)",
    rationale="The debug server exposes pprof, expvar and health without authentication.",
    passes_when="http.debug.addr, when set, is a loopback address and the registry's debug listener really "
    "listens only on loopback (its sockets read from /proc/net/tcp and tcp6)",
    remediation="Set http.debug.addr: 127.0.0.1:5001 (or remove the debug section).",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
)
def debug_loopback(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, addr = raw(facts["config"], "http.debug.addr")
    if not present or not addr:
        yield passed(subject(facts), "no debug server configured (http.debug.addr is not set)")
        return
    listen = parse_listen(str(addr))
    if listen is None:
        yield failed(subject(facts), f"http.debug.addr {addr!r} is not a host:port address", observed=addr,
                     expected="127.0.0.1:<port>")
    elif listen.loopback:
        live_problem, note, live = debug_listeners(ev, port_of(addr))
        observed = {"http.debug.addr": addr, "live": live}
        if live_problem:
            yield failed(subject(facts), f"http.debug.addr {addr} is loopback, but {live_problem}",
                         observed=observed, expected="127.0.0.1:<port>, loopback sockets only")
        else:
            yield passed(subject(facts), f"http.debug.addr {addr} is loopback" + note, observed=observed)
    else:
        where = "all interfaces" if listen.all_interfaces else listen.host
        yield failed(subject(facts), f"debug server listens on {where} ({addr})", observed=addr,
                     expected="127.0.0.1:<port>")
