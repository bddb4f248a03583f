"""auth.plaintext and net.registry-port on real loopback sockets: every address, the Host header,
open versus closed, and the verdicts the checks draw from them."""

from __future__ import annotations

import asyncio
import socket

from hostile.servers import HostileServer

from auditor.gather import Gatherer
from auditor.model import Status
from auditor.plugins import load_probes
from auditor.probes._outside import resolve, tcp_state
from auditor.target import Target

from .helpers import judge


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_tcp_state_open_and_closed() -> None:
    with HostileServer("record") as server:
        assert asyncio.run(tcp_state("127.0.0.1", server.port, 2.0))["state"] == "open"
    assert asyncio.run(tcp_state("127.0.0.1", _free_port(), 2.0))["state"] == "closed"


def test_resolve_lists_each_address_once_with_its_family() -> None:
    found = asyncio.run(resolve("localhost", 80, 5.0))
    assert {"address": "127.0.0.1", "family": "ipv4"} in found
    assert len({f["address"] for f in found}) == len(found)


def test_plaintext_registry_on_the_target_and_registry_port_fails_on_every_address() -> None:
    with HostileServer("record") as server:
        target = Target(url=f"http://localhost:{server.port}", options={"registry_port": server.port})
        gatherer = Gatherer(load_probes(), target, None, 20.0)
        records = asyncio.run(gatherer.gather(["auth.plaintext", "net.registry-port"]))
    assert records["auth.plaintext"].state == "ok", records["auth.plaintext"].reason
    plain = records["auth.plaintext"].value
    assert plain["ports"] == [80, server.port]
    hosts = {r["headers"].get("host") for r in server.requests}
    assert hosts == {f"localhost:{server.port}"}, "the target's Host header was not sent"
    results = judge("auth.challenge-over-tls", records)
    on_target = [r for r in results if f"127.0.0.1:{server.port}" in r.subject]
    assert on_target and {r.status for r in on_target} == {Status.FAIL}
    exposed = judge("net.registry-port-exposed", records)
    v4 = [r for r in exposed if r.subject.startswith("127.0.0.1:")]
    assert v4 and v4[0].status is Status.FAIL and "WITHOUT authentication" in v4[0].message
    # ::1 (when localhost resolves to it) is closed: that address passes on its own.
    assert all(r.status is Status.PASS for r in exposed if r.subject.startswith("[::1]"))
