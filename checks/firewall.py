"""firewall.registry-port: who can open a TCP connection to the registry port, judged from the ruleset.

The judgement re-runs the evaluator (auditor.judge.firewall.evaluate) on the recorded rulesets, so
`regaudit evaluate` re-judges with another profile's allowed sources. Outcomes, one per subject:
- `IPv4`, `IPv6`: every allowed network is accepted (all of it, on the interface the host routes
  it to) and no other source is (the source space is split on every rule boundary, so this is
  exact, not sampled). IPv6 is judged only when the registry listens on IPv6 (a `::` socket
  counts) or its listeners are unknown; otherwise it is `skip` (ip6tables rules are required
  whenever the registry listens on IPv6: docs/guide-notes.md#firewall-loopback-and-ipv6). IPv4 is
  always judged: with a loopback-bound registry the guide's rules are defence in depth, judged for
  the host's own addresses.
- `local connections`: the host's own connections to the registry (the proxy on the same host,
  arriving on lo) are accepted (`-i lo -j ACCEPT` must come first:
  docs/guide-notes.md#firewall-loopback-and-ipv6).
A ruleset that cannot be read or parsed, or a match the evaluator does not model on a reachable
rule, gives `error` with the reason: never a guess.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.firewall.assemble import Assembly, assemble
from auditor.judge.firewall.reach import Scene, judge_family, judge_local, parse_routes
from auditor.model import Severity, Vantage

PROBE = "host.firewall"
GUIDE_V4 = ["10.0.1.10/32", "10.0.5.0/24", "10.0.10.0/24"]
NAMES = {4: "IPv4", 6: "IPv6"}
PUBLIC = ("8.8.8.8", "2001:4860:4860::8888")
NOTE = "docs/guide-notes.md#firewall-loopback-and-ipv6"  # where the guide's rules fail as written


def scene_of(facts: Mapping[str, Any], port: int) -> Scene:
    """The host as recorded by host.firewall (listeners, interface addresses, routes)."""
    listen = facts.get("listen")
    local = {name: [ipaddress.ip_address(a) for a in addrs]
             for name, addrs in (facts.get("interfaces") or {}).items()}
    return Scene(
        port=port,
        listen=None if listen is None else [_unmapped(a) for a in listen],
        local=local,
        routes=parse_routes(facts.get("routes") or []),
    )


def _unmapped(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address; a v4-mapped IPv6 socket address (::ffff:a.b.c.d) is the IPv4 address it serves."""
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ports_of(facts: Mapping[str, Any]) -> list[int]:
    """The host-side ports to judge: the published host ports of a containerised registry, else its port."""
    published = sorted({int(p["host_port"]) for p in facts.get("published_ports") or [] if p.get("host_port")})
    return published or [int(facts.get("registry_port") or 5000)]


def judged(scene: Scene, family: int) -> tuple[bool, str]:
    """Whether `family` must be filtered, and why."""
    listens = scene.listens_on(family)
    if listens is None:
        return True, "the registry's listening sockets are unknown: judged as if it listened on every address"
    if family == 4:
        return True, "the guide's rules are IPv4 rules: always judged"
    if any(a.version == 6 and not a.is_loopback for a in scene.listen or []):
        return True, f"the registry listens on IPv6 ({NOTE}: ip6tables or nftables rules are required)"
    if listens:
        return False, "the registry listens on IPv6 loopback only (::1): no IPv6 traffic from other hosts reaches it"
    return False, f"the registry does not listen on IPv6 (IPv6 rules are required only when it does: {NOTE})"


def _rule(ev: Mapping[str, Any] | None) -> str:
    """`chain #n: text` of the decisive step of an evaluation's evidence."""
    if not ev:
        return "(no rule)"
    steps = ev.get("steps") or []
    if not steps:
        return "(no base chain on this path: nothing filters it)"
    step = steps[-1]
    where = f"{step['source']} {step['table']} {step['chain']}"
    return f"{where} rule {step['rule']}: {step['text']}" if step.get("rule") else f"{where} {step['text']}"


def family_outcome(asm: Assembly, scene: Scene, family: int, allowed: Sequence[str], subject: str) -> Outcome:
    """One family's verdict: errors first, then outsiders let in, then allowed sources refused."""
    must, why = judged(scene, family)
    result = judge_family(asm, scene, family, allowed)
    observed = {"judged_because": why, "rulesets": asm.read, "notes": asm.notes, **result}
    expected = {"accepted": list(allowed), "everything else": "dropped or rejected"}
    if not must:
        return skipped(subject, f"not applicable: {why}")
    if result["errors"]:
        first = result["errors"][0]
        return errored(subject, f"cannot decide for sources {', '.join(first['prefixes'][:3])}: {first['reason']}",
                       observed, expected)
    bad_allowed = [row for row in result["allowed"] if row["accepted"] == "error"]
    if bad_allowed:
        row = bad_allowed[0]
        return errored(subject, f"cannot decide for allowed {row['network']}: "
                       f"{(row['decided_by'] or {}).get('reason', 'evaluation error')}", observed, expected)
    outsiders = result["outsiders"]
    if outsiders:
        public = [o for o in outsiders if o["example"] in PUBLIC]
        first = public[0] if public else outsiders[0]
        via = f"{first['destination']} on {first['interface']}"
        if result["outsider_addresses_accepted"] == result["outsider_addresses_total"]:
            who = "every source outside the allowed networks reaches"
        else:
            prefixes = [p for o in outsiders for p in o["prefixes"]]
            more = f" and {len(prefixes) - 4} more" if len(prefixes) > 4 else ""
            who = f"sources outside the allowed networks ({', '.join(prefixes[:4])}{more}) reach"
        return failed(subject, f"{who} port {scene.port} (e.g. {first['example']} to {via}), let in by "
                      f"{_rule(first)}", observed, expected)
    refused = [row for row in result["allowed"] if row["accepted"] != "all"]
    if refused:
        row = refused[0]
        return failed(subject, f"allowed source {row['network']} is refused ({', '.join(row['refused'][:4])}) by "
                      f"{_rule(row['decided_by'])}", observed, expected)
    blockers = sorted({_rule({"steps": [s]}) for s in result["outsiders_refused_by"]})
    allowed_text = (f"{len(result['allowed'])} allowed network(s) accepted" if result["allowed"]
                    else "no source is allowed")
    return passed(subject, f"{allowed_text}; every other source is refused by " + "; ".join(blockers[:3]),
                  observed, expected)


def local_outcome(asm: Assembly, scene: Scene, subject: str) -> Outcome | None:
    """The host's own connections (iif lo, source = destination) to every address the registry listens on."""
    rows = [row for family in (4, 6) if scene.listen is None or scene.listens_on(family)
            for row in judge_local(asm, scene, family)]
    if not rows:
        return None
    observed = {"connections": rows}
    expected = f"accepted ({NOTE}: -i lo -j ACCEPT before the DROP)"
    errs = [r for r in rows if r["result"] == "error"]
    if errs:
        return errored(subject, f"cannot decide for local connections to {errs[0]['address']}: {errs[0]['reason']}",
                       observed, expected)
    dropped = [r for r in rows if r["result"] == "drop"]
    if dropped:
        where = ", ".join(f"{r['address']}:{scene.port}" for r in dropped)
        return failed(subject, f"the host's own connections to {where} (the proxy's) are dropped by "
                      f"{_rule(dropped[0])} ({NOTE}: accept lo first)", observed, expected)
    return passed(subject, "the host's own connections to " + ", ".join(f"{r['address']}" for r in rows)
                  + f" on port {scene.port} are accepted", observed, expected)


@check(
    id="firewall.registry-port",
    title="Only the allowed sources reach the registry port",
    severity=Severity.HIGH,
    area="firewall",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide="Network Segmentation: firewall rules",
    rationale="The registry speaks plaintext HTTP behind the proxy; whoever reaches its port bypasses the "
    "proxy's TLS and authentication. Only the proxy, CI runners and runtime hosts should reach it.",
    passes_when="the ruleset (iptables/ip6tables or nftables, evaluated in kernel order with chain jumps, returns, "
    "policies and conntrack state; for a containerised registry FORWARD and DOCKER-USER) accepts the "
    "registry port from every allowed source and from no other, for IPv4, and for IPv6 when the registry "
    "listens on IPv6; the host's own (loopback) connections are accepted",
    remediation="Accept lo first, then the allowed sources, then drop the port: "
    "iptables -A INPUT -i lo -j ACCEPT; iptables -A INPUT -s 10.0.1.10/32 -p tcp --dport 5000 -j ACCEPT "
    "(and each allowed network); iptables -A INPUT -p tcp --dport 5000 -j DROP; the same with ip6tables "
    "when the registry listens on IPv6. For a containerised registry put the rules in DOCKER-USER.",
    generator="firewall",
    references=("NIST SP 800-190 4.2.1 (registry: insecure connections)", "CIS Docker Benchmark 5.x (network)"),
    params={"allowed_sources_v4": GUIDE_V4, "allowed_sources_v6": []},
)
def registry_port(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    allowed = {4: list(params.get("allowed_sources_v4") or []), 6: list(params.get("allowed_sources_v6") or [])}
    for family, nets in allowed.items():
        for net in nets:
            try:
                if ipaddress.ip_network(net, strict=False).version != family:
                    raise ValueError(f"not an IPv{family} network")
            except ValueError as exc:
                yield errored("profile", f"allowed_sources_v{family}: {net!r}: {exc}")
                return
    if facts.get("registry_running") is False and not facts.get("listen"):
        yield skipped("-", "no registry runs in this network namespace and nothing listens on its port (an offline "
                      "review of a config file): the firewall in front of the registry is not on this host")
        return
    asm = assemble(facts.get("rulesets") or {})
    if asm.problems:
        yield errored("ruleset", "cannot evaluate the firewall: " + "; ".join(asm.problems),
                      observed={"problems": asm.problems, "read": asm.read})
        return
    ports = ports_of(facts)
    for port in ports:
        scene = scene_of(facts, port)
        suffix = f" port {port}" if len(ports) > 1 else ""
        for family in (4, 6):
            yield family_outcome(asm, scene, family, allowed[family], NAMES[family] + suffix)
        local = local_outcome(asm, scene, "local connections" + suffix)
        if local is not None and not facts.get("containerised"):
            yield local
