"""net.* checks, outside: the registry's own port must not be reachable from the scanning host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed
from auditor.model import Severity, Vantage

NOT_REACHABLE = ("closed", "filtered", "unreachable")


def _subject(entry: dict[str, Any]) -> str:
    address = str(entry.get("address"))
    shown = f"[{address}]" if ":" in address else address
    return f"{shown}:{entry.get('port')} ({entry.get('family')})"


def _what_answers(entry: dict[str, Any]) -> str:
    if "http_error" in entry:
        return f"no usable HTTP answer ({entry['http_error']})"
    http = entry.get("http") or {}
    status = http.get("status")
    if entry.get("registry_answers"):
        demand = "and demands authentication (401)" if entry.get("auth_required") else (
            f"WITHOUT authentication (GET /v2/ -> {status})")
        return f"a registry answers there {demand}"
    return f"something answers GET /v2/ with {status} (no Docker-Distribution-Api-Version header)"


@check(
    id="net.registry-port-exposed",
    title="The registry's own port is not reachable from the scanning host",
    severity=Severity.CRITICAL,
    area="net",
    vantage=Vantage.OUTSIDE,
    needs=("net.registry-port",),
    guide="network segmentation",
    rationale="A registry port reachable directly bypasses the proxy's TLS, authentication and limits: "
    "clients (and attackers) talk plaintext HTTP to the registry itself.",
    passes_when="the registry port (5000, or --registry-port) is closed, filtered or unroutable from here on "
    "every IPv4 and IPv6 address the target host resolves to",
    remediation="Bind the registry to 127.0.0.1 (http.addr: 127.0.0.1:5000) and firewall the port for IPv4 "
    "and IPv6 (iptables and ip6tables, -i lo ACCEPT first).",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.3", "CIS Docker Benchmark (network segmentation)"),
)
def registry_port_exposed(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev["net.registry-port"]
    families = facts.get("families") or []
    missing = [f for f in ("ipv4", "ipv6") if f not in families]
    note = f" (the host resolves to no {' or '.join(missing)} address)" if missing else ""
    for entry in facts.get("addresses") or []:
        observed = {k: entry.get(k) for k in ("state", "detail", "registry_answers", "auth_required", "http",
                                               "http_error") if entry.get(k) is not None}
        expected = "not reachable (refused, filtered or unroutable)"
        state = entry.get("state")
        if state in NOT_REACHABLE:
            yield passed(_subject(entry), f"not reachable: {state} ({entry.get('detail')}){note}", observed, expected)
        elif state == "open":
            yield failed(_subject(entry), f"registry port reachable from here; {_what_answers(entry)}", observed,
                         expected)
        else:
            yield errored(_subject(entry), f"cannot tell whether the port is reachable: {entry.get('detail')}",
                          observed, expected)
