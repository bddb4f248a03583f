"""Reachability judgement over an assembled ruleset: which sources reach the registry's port.

Contract: pure functions of an :class:`Assembly` and a :class:`Scene` (the host's addresses,
interfaces and routes as recorded); :func:`judge_family` and :func:`judge_local` return the
evidence rows the firewall check reports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .assemble import Assembly
from .evaluate import (
    IfaceMatch,
    Interval,
    IPAddress,
    Packet,
    Pipeline,
    Step,
    Verdict,
    address,
    evaluate,
    impossible,
    interval_points,
    interval_prefixes,
    merge,
    nat_destination,
    network_interval,
    source_segments,
)


# ---------------------------------------------------------------- judging reachability
@dataclass(frozen=True)
class Route:
    family: int
    interval: Interval
    prefixlen: int
    dev: str


def parse_routes(rows: Iterable[dict[str, object]]) -> list[Route]:
    """Routes recorded as {"dst": "10.0.0.0/16"|"default", "dev": "eth0"} (main table)."""
    out = []
    for row in rows:
        dst, dev = str(row.get("dst", "")), row.get("dev")
        if not dev or dst in ("", "unreachable", "blackhole", "prohibit"):
            continue
        family = int(row.get("family", 6 if ":" in dst else 4))  # type: ignore[call-overload]
        text = ("0.0.0.0/0" if family == 4 else "::/0") if dst == "default" else dst
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        out.append(Route(net.version, network_interval(net), net.prefixlen, str(dev)))
    return out


def route_dev(routes: Sequence[Route], family: int, value: int) -> str | None:
    best: Route | None = None
    for r in routes:
        inside = r.family == family and r.interval[0] <= value <= r.interval[1]
        if inside and (best is None or r.prefixlen > best.prefixlen):
            best = r
    return best.dev if best else None


@dataclass
class Scene:
    """The host as the evaluator needs it: listeners, addresses, interfaces, routes."""

    port: int
    listen: list[IPAddress] | None  # None: unknown; :: and 0.0.0.0 mean every address
    local: dict[str, list[IPAddress]]  # interface -> its addresses
    routes: list[Route]

    def addresses(self, family: int) -> list[IPAddress]:
        return [a for addrs in self.local.values() for a in addrs if a.version == family]

    def listens_on(self, family: int) -> bool | None:
        if self.listen is None:
            return None
        return any(a.version == family or (a.version == 6 and a.is_unspecified) for a in self.listen)


SYNTHETIC_DST = {4: ipaddress.ip_address("192.0.2.1"), 6: ipaddress.ip_address("2001:db8::1")}
OTHER_IFACE = "unlisted0"


def destinations(scene: Scene, family: int) -> tuple[list[IPAddress], str]:
    """Where outside traffic to the registry goes, and why these addresses."""
    own = [a for a in scene.addresses(family) if not a.is_loopback]
    listen = [a for a in (scene.listen or []) if a.version == family or a.is_unspecified]
    specific = [a for a in listen if not a.is_unspecified and not a.is_loopback and a.version == family]
    wildcard = any(a.is_unspecified for a in listen)
    if scene.listen is not None and specific and not wildcard:
        return specific, "the registry's routable listen addresses"
    if own:
        why = ("the host's addresses (the registry listens on every address)" if wildcard
               else "the host's addresses (registry listeners unknown)" if scene.listen is None
               else "the host's addresses (the registry listens on loopback only: the rules are defence in depth)")
        return own, why
    return [SYNTHETIC_DST[family]], "a documentation address (the host's addresses were not recorded)"


def interfaces(scene: Scene, pipeline: Pipeline) -> list[str]:
    """Input interfaces an outsider's packet may arrive on: the host's (lo excluded), or the rules'."""
    names = [n for n in scene.local if n != "lo"]
    if names:
        return sorted(names)
    mentioned: set[str] = set()
    for base in pipeline.chains:
        for chain in base.table.chains.values():
            for rule in chain.rules:
                for m in rule.matches:
                    if isinstance(m, IfaceMatch) and m.direction == "in":
                        mentioned.update(p[:-1] + "0" if p.endswith(("+", "*")) else p for p in m.patterns)
    mentioned.discard("lo")
    return sorted(mentioned | {OTHER_IFACE})


@dataclass
class Reach:
    verdict: Verdict
    dst: str
    iif: str
    path: str
    nat: Step | None = None

    def evidence(self) -> dict[str, object]:
        out: dict[str, object] = {"destination": self.dst, "interface": self.iif, "path": self.path,
                                  "steps": [s.to_json() for s in self.verdict.steps]}
        if self.nat is not None:
            out["dnat"] = self.nat.to_json()
        if self.verdict.reason:
            out["reason"] = self.verdict.reason
        return out


def reach(asm: Assembly, scene: Scene, family: int, src: IPAddress, dst: IPAddress, iif: str) -> Reach:
    """The fate of a first SYN from `src` to `dst`:port arriving on `iif`: DNATed and forwarded when
    the nat table rewrites it (a published container port), else delivered through INPUT.

    The host's own packets (`iif` lo) meet nat OUTPUT, not PREROUTING: Docker DNATs them there only
    for non-loopback destinations (`! -d 127.0.0.0/8`), and a DNATed one leaves through the output
    hook, never FORWARD (DOCKER-USER does not see it); to 127.0.0.1 they reach docker-proxy through INPUT."""
    local = frozenset(a for addrs in scene.local.values() for a in addrs) | {dst}
    pkt = Packet(family, src, dst, scene.port, iif, local=local)
    nat_table = asm.nat.get(family)
    own = iif == "lo"
    if nat_table is not None:
        chain = "OUTPUT" if own else "PREROUTING"
        hit = nat_destination(nat_table, pkt, chain)
        if isinstance(hit, str):
            step = Step("iptables", "nat", chain, None, "", "error")
            return Reach(Verdict("error", (step,), hit), str(dst), iif, "input")
        if hit is not None:
            host, port, step = hit
            new_dst = ipaddress.ip_address(host)
            oif = route_dev(scene.routes, family, int(new_dst)) or _bridge_of(step) or "docker0"
            path = "output" if own else "forward"
            fwd = Packet(family, src, new_dst, port, iif, oif=oif, dnat=True, local=local)
            return Reach(evaluate(asm.pipeline, fwd, path), f"{dst} -> {host}:{port}", iif, path, step)
    return Reach(evaluate(asm.pipeline, pkt, "input"), str(dst), iif, "input")


def _bridge_of(step: Step) -> str | None:
    tokens = step.text.split()
    for i, tok in enumerate(tokens[:-2]):
        if tok == "!" and tokens[i + 1] in ("-i", "--in-interface"):
            return tokens[i + 2]
    return None


def _networks(texts: Iterable[str], family: int) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for text in texts:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == family:
            out.append(net)
    return out


def judge_family(asm: Assembly, scene: Scene, family: int, allowed: Sequence[str]) -> dict[str, Any]:
    """Which sources of `family` reach the registry port: the allowed networks and everyone else.

    The source space is split on every boundary a rule, route or allowed network draws; each
    segment is judged on every destination and input interface (for allowed networks, on the
    interface the host routes them to, when routes are known).
    """
    nets = _networks(allowed, family)
    points = [p for n in nets for p in interval_points([network_interval(n)])]
    points += [p for r in scene.routes if r.family == family for p in interval_points([r.interval])]
    points += [p for a in scene.addresses(family) for p in (int(a), int(a) + 1)]  # addrtype --src-type LOCAL
    dsts, dst_why = destinations(scene, family)
    iifs = interfaces(scene, asm.pipeline)
    accepted: list[Interval] = []
    outsiders: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    refused_by: dict[str, dict[str, object]] = {}
    allowed_rows = [_AllowedAcc(str(n)) for n in nets]
    segments = [s for s in source_segments(asm.pipeline, family, points) if not impossible(family, s)]
    outside_total = outside_accepted = 0
    for seg in segments:
        src = address(family, seg[0])
        routed = route_dev(scene.routes, family, seg[0])
        results = [reach(asm, scene, family, src, d, i) for d in dsts for i in iifs]
        hits = [r for r in results if r.verdict.result == "accept"]
        errs = [r for r in results if r.verdict.result == "error"]
        owner = next((row for n, row in zip(nets, allowed_rows, strict=True)
                      if int(n.network_address) <= seg[0] <= int(n.broadcast_address)), None)
        if hits:
            accepted.append(seg)
        if owner is not None:
            mine = [r for r in results if routed is None or r.iif == routed or routed not in iifs]
            good = [r for r in mine if r.verdict.result == "accept"]
            bad = [r for r in mine if r.verdict.result == "error"]
            bucket = owner.accepted if good else owner.errors if bad else owner.refused
            bucket.append(seg)
            pick = good[0] if good else bad[0] if bad else mine[0] if mine else results[0]
            if owner.decided_by is None or not good:
                owner.decided_by = pick.evidence()
            continue
        outside_total += seg[1] - seg[0] + 1
        if hits:
            outside_accepted += seg[1] - seg[0] + 1
            outsiders.append({"segment": seg, "example": str(_example(family, seg)), **hits[0].evidence()})
        elif errs:
            errors.append({"segment": seg, "example": str(_example(family, seg)), **errs[0].evidence()})
        else:
            for r in results:
                step = r.verdict.decisive
                if step is not None:
                    refused_by.setdefault(f"{step.source}/{step.table}/{step.chain}/{step.rule}", step.to_json())
    accepted_prefixes = [p for seg in merge(accepted) for p in interval_prefixes(family, seg)]
    return {
        "family": family,
        "destinations": [str(d) for d in dsts],
        "destinations_why": dst_why,
        "interfaces": iifs,
        "segments_tested": len(segments),
        "accepted": accepted_prefixes[:MAX_PREFIXES],
        "accepted_truncated": len(accepted_prefixes) > MAX_PREFIXES,
        "allowed": [_allowed_row(family, row) for row in allowed_rows],
        "outsiders": _collapse(family, outsiders),
        "outsider_addresses_accepted": outside_accepted,
        "outsider_addresses_total": outside_total,
        "errors": _collapse(family, errors),
        "outsiders_refused_by": list(refused_by.values()),
    }


MAX_PREFIXES = 64  # evidence lists at most this many accepted prefixes (accepted_truncated says so)
PUBLIC_SAMPLE = {4: ipaddress.ip_address("8.8.8.8"), 6: ipaddress.ip_address("2001:4860:4860::8888")}


def _example(family: int, seg: Interval) -> IPAddress:
    """A readable address of the segment (every address of a segment is judged alike)."""
    sample = PUBLIC_SAMPLE[family]
    return sample if seg[0] <= int(sample) <= seg[1] else address(family, seg[0])


@dataclass
class _AllowedAcc:
    network: str
    accepted: list[Interval] = field(default_factory=list)
    refused: list[Interval] = field(default_factory=list)
    errors: list[Interval] = field(default_factory=list)
    decided_by: dict[str, object] | None = None


def _allowed_row(family: int, row: _AllowedAcc) -> dict[str, object]:
    def prefixes(segs: list[Interval]) -> list[str]:
        return [p for seg in merge(segs) for p in interval_prefixes(family, seg)]

    refused, errs, good = prefixes(row.refused), prefixes(row.errors), prefixes(row.accepted)
    state = "error" if errs else "all" if not refused else "partly" if good else "none"
    return {"network": row.network, "accepted": state, "refused": refused, "error_prefixes": errs,
            "decided_by": row.decided_by}


def _collapse(family: int, rows: list[dict[str, object]], limit: int = 20) -> list[dict[str, object]]:
    """Adjacent segments decided the same way become one entry with their prefixes."""
    out: list[dict[str, object]] = []
    for row in rows:
        seg: Interval = row.pop("segment")  # type: ignore[assignment]
        key = (row.get("steps"), row.get("reason"), row.get("interface"), row.get("destination"))
        if out and out[-1]["_key"] == repr(key) and out[-1]["_end"] + 1 == seg[0]:  # type: ignore[operator]
            out[-1]["_end"] = seg[1]
            continue
        out.append({**row, "_key": repr(key), "_start": seg[0], "_end": seg[1]})
    result = []
    for row in out[:limit]:
        start, end = row.pop("_start"), row.pop("_end")
        row.pop("_key")
        result.append({"prefixes": interval_prefixes(family, (start, end))[:16], **row})  # type: ignore[arg-type]
    return result


def judge_local(asm: Assembly, scene: Scene, family: int) -> list[dict[str, Any]]:
    """The host's own connections to the registry (the proxy on the same host): iif lo, src = dst."""
    if scene.listen is None:
        targets = [ipaddress.ip_address("127.0.0.1" if family == 4 else "::1")]
    else:
        targets = []
        for a in scene.listen:
            if a.is_unspecified and (a.version == family or a.version == 6):
                targets.append(ipaddress.ip_address("127.0.0.1" if family == 4 else "::1"))
            elif a.version == family:
                targets.append(a)
    out = []
    for dst in dict.fromkeys(targets):
        probe = reach(asm, scene, family, dst, dst, "lo")
        out.append({"address": str(dst), "result": probe.verdict.result, **probe.evidence()})
    return out
