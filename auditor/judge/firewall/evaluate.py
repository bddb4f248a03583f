"""A packet-filter evaluator: walks iptables and nftables rulesets the way the kernel does.

Contract:
- Parsers (`iptables`, `nftables` in this package) turn a ruleset into :class:`Chain`s of
  :class:`Rule`s made of :class:`Match` objects and a :class:`Target`. This module is pure: no
  I/O, no subprocess; it judges a :class:`Packet` (the first SYN of a new TCP connection).
- :func:`evaluate` runs a packet through every base chain of a :class:`Pipeline` in order: an
  accept ends one base chain only, a drop or reject anywhere is final, so the packet is accepted
  only when every base chain accepts it.
- A match or target the evaluator does not model gives an ``error`` verdict naming it, unless a
  modelled match of the same rule already fails (then the rule cannot match, whatever it is).
- :func:`source_segments` splits the source address space on every address boundary any rule
  tests, so one representative per segment decides the whole segment: the accepted source set
  is computed exactly, not sampled.
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Interval = tuple[int, int]
Tri = bool | str  # True, False, or the reason the answer is unknown
MAX_DEPTH = 64
ALL_BITS = {4: 32, 6: 128}
ACCEPT, DROP, REJECT, RETURN, JUMP, GOTO, CONTINUE, UNKNOWN, DNAT = (
    "accept", "drop", "reject", "return", "jump", "goto", "continue", "unknown", "dnat")
FINAL = (ACCEPT, DROP, REJECT)


@dataclass(frozen=True)
class Packet:
    """The first SYN of a new TCP connection, as the filter sees it.

    `oif` is set on the forward path (a DNATed packet to a container); `dnat` marks such a
    packet (conntrack state DNAT); `local` is the set of the host's own addresses (addrtype).
    """

    family: int
    src: IPAddress
    dst: IPAddress
    dport: int
    iif: str
    oif: str | None = None
    sport: int = 40000
    proto: str = "tcp"
    dnat: bool = False
    local: frozenset[IPAddress] = frozenset()

    @property
    def ct_states(self) -> frozenset[str]:
        return frozenset({"NEW", "DNAT"} if self.dnat else {"NEW"})


class Match(abc.ABC):
    """One condition of a rule; `test` answers True, False, or a reason string (unknown)."""

    text: str = ""

    @abc.abstractmethod
    def test(self, pkt: Packet) -> Tri:
        """Whether the packet matches: True, False, or a reason string when it cannot be told."""

    def src_points(self, family: int) -> Iterable[int]:
        """Addresses where this match's answer may change for a varying source (interval starts)."""
        return ()


@dataclass
class Unknown(Match):
    """A match the evaluator does not model: it can only make a verdict `error`."""

    name: str
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        return f"unknown match {self.name}"


@dataclass
class Always(Match):
    """A match that holds for every packet (comments, counters)."""

    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        return True


@dataclass
class FamilyMatch(Match):
    """nftables `meta nfproto` in an inet table, or a payload's implicit family dependency."""

    families: frozenset[int]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        return (pkt.family in self.families) != self.negate


def interval_points(intervals: Iterable[Interval]) -> Iterator[int]:
    for lo, hi in intervals:
        yield lo
        yield hi + 1


def network_interval(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Interval:
    return int(net.network_address), int(net.broadcast_address)


@dataclass
class AddrMatch(Match):
    """Source or destination address in a set of intervals (prefixes, ranges, set elements).

    `family` restricts it to one IP version: a v4 address match never matches a v6 packet.
    """

    field: Literal["src", "dst"]
    family: int
    intervals: tuple[Interval, ...]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        if pkt.family != self.family:
            return False
        value = int(pkt.src if self.field == "src" else pkt.dst)
        inside = any(lo <= value <= hi for lo, hi in self.intervals)
        return inside != self.negate

    def src_points(self, family: int) -> Iterable[int]:
        if self.field == "src" and family == self.family:
            return interval_points(self.intervals)
        return ()


def iface_matches(pattern: str, name: str) -> bool:
    """iptables `eth+` and nftables `eth*` are prefix wildcards; otherwise exact names."""
    if pattern.endswith(("+", "*")):
        return name.startswith(pattern[:-1])
    return name == pattern


@dataclass
class IfaceMatch(Match):
    """Input (`-i`, iifname) or output (`-o`, oifname) interface, with wildcards."""

    direction: Literal["in", "out"]
    patterns: tuple[str, ...]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        name = pkt.iif if self.direction == "in" else pkt.oif
        if name is None:  # no output interface on the input path: iptables refuses -o in INPUT
            return self.negate
        hit = any(iface_matches(p, name) for p in self.patterns)
        return hit != self.negate


@dataclass
class ProtoMatch(Match):
    """Layer-4 protocol (`-p tcp`, `meta l4proto tcp`); names or numbers."""

    protos: frozenset[str]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        hit = pkt.proto in self.protos or {"tcp": "6"}.get(pkt.proto) in self.protos or "all" in self.protos
        return hit != self.negate


@dataclass
class PortMatch(Match):
    """TCP/UDP port (`--dport`, `--dports`, `th dport`); `proto` None means tcp or udp."""

    field: Literal["dport", "sport"]
    intervals: tuple[Interval, ...]
    proto: str | None = "tcp"
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        if self.proto is not None and pkt.proto != self.proto:
            return False
        value = pkt.dport if self.field == "dport" else pkt.sport
        hit = any(lo <= value <= hi for lo, hi in self.intervals)
        return hit != self.negate


@dataclass
class CtStateMatch(Match):
    """Conntrack state (`--ctstate`, `--state`, `ct state`): a first SYN is NEW (and DNAT if DNATed)."""

    states: frozenset[str]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        hit = bool(self.states & pkt.ct_states)
        return hit != self.negate


@dataclass
class AddrTypeMatch(Match):
    """`-m addrtype --src-type/--dst-type` and nft `fib daddr type`: LOCAL, UNICAST, ..."""

    field: Literal["src", "dst"]
    types: frozenset[str]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        addr = pkt.src if self.field == "src" else pkt.dst
        have = {"UNICAST"} if not (addr.is_multicast or addr.is_unspecified) else set()
        if addr.is_multicast:
            have.add("MULTICAST")
        if addr in pkt.local or addr.is_loopback:
            have.add("LOCAL")
        unknown = self.types - {"LOCAL", "UNICAST", "MULTICAST"}
        if unknown and not (self.types & have):
            return f"unknown address type {','.join(sorted(unknown))}"
        hit = bool(self.types & have)
        return hit != self.negate

    def src_points(self, family: int) -> Iterable[int]:
        if self.field != "src":
            return ()
        return ()


@dataclass
class TcpFlagsMatch(Match):
    """`--syn`, `--tcp-flags MASK COMP`, nft `tcp flags & mask == comp`: a first SYN has only SYN."""

    mask: frozenset[str]
    comp: frozenset[str]
    negate: bool = False
    text: str = ""

    def test(self, pkt: Packet) -> Tri:
        flags = frozenset({"SYN"})
        hit = (flags & self.mask) == self.comp
        return hit != self.negate


@dataclass
class Target:
    """What a matching rule does: a verdict, a jump/goto to `chain`, continue, or unknown."""

    kind: str
    chain: str | None = None
    name: str = ""
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Rule:
    """One rule: all matches must hold, then the target applies. `number` is 1-based."""

    number: int
    matches: list[Match]
    target: Target
    text: str
    handle: int | None = None

    def test(self, pkt: Packet) -> Tri:
        unknown: str | None = None
        for match in self.matches:
            answer = match.test(pkt)
            if answer is False:
                return False
            if answer is not True and unknown is None:
                unknown = str(answer)
        return unknown if unknown is not None else True


@dataclass
class Chain:
    """A chain; `policy` is set for base chains (accept/drop), None for user chains."""

    name: str
    rules: list[Rule] = field(default_factory=list)
    policy: str | None = None


@dataclass
class Table:
    """Chains that can jump to each other (an iptables table, an nftables table)."""

    source: str  # "iptables", "ip6tables", "iptables-legacy", "nftables"
    family: str  # "ip", "ip6", "inet", ...
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How evidence names the table: `filter` for iptables, `inet regfw` for nftables."""
        return f"{self.family} {self.name}" if self.source == "nftables" else self.name


@dataclass
class BaseChain:
    """A chain attached to a hook: where a packet enters a table."""

    table: Table
    chain: str
    hook: str
    priority: int
    families: frozenset[int]

    @property
    def label(self) -> str:
        return f"{self.table.source} {self.table.family} {self.table.name} {self.chain}"


@dataclass(frozen=True)
class Step:
    """The rule (or policy) that decided one base chain's verdict, for evidence."""

    source: str
    table: str
    chain: str
    rule: int | None
    text: str
    verdict: str

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "table": self.table, "chain": self.chain, "rule": self.rule,
                "text": self.text, "verdict": self.verdict}


@dataclass(frozen=True)
class Verdict:
    """The packet's fate: accept, drop (reject included) or error; `steps` say which rules decided."""

    result: Literal["accept", "drop", "error"]
    steps: tuple[Step, ...]
    reason: str = ""

    @property
    def decisive(self) -> Step | None:
        """The step that dropped (or erred), else the last accepting base chain's step."""
        return self.steps[-1] if self.steps else None


HOOK_ORDER = {"input": ("ingress", "prerouting", "input"), "forward": ("ingress", "prerouting", "forward"),
              "output": ("output",)}


@dataclass
class Pipeline:
    """Every base chain a packet meets on one path (input or forward), in kernel order."""

    chains: list[BaseChain]

    def for_packet(self, pkt: Packet, path: str) -> list[BaseChain]:
        hooks = HOOK_ORDER[path]
        chosen = [c for c in self.chains if c.hook in hooks and pkt.family in c.families]
        return sorted(chosen, key=lambda c: (hooks.index(c.hook), c.priority))

    def src_points(self, family: int) -> set[int]:
        points: set[int] = set()
        for base in self.chains:
            for chain in base.table.chains.values():
                for rule in chain.rules:
                    for match in rule.matches:
                        points.update(match.src_points(family))
        return points


class _Error(Exception):
    def __init__(self, step: Step, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


def _walk(table: Table, name: str, pkt: Packet, depth: int,
          finals: tuple[str, ...] = FINAL) -> tuple[str, Step | None, Rule | None]:
    """Run one chain: (final kind, step, rule) when a final target hits, (return, None, None) otherwise."""
    if depth > MAX_DEPTH:
        raise _Error(Step(table.source, table.label, name, None, "", "error"),
                     f"chain nesting deeper than {MAX_DEPTH} at chain {name}")
    chain = table.chains.get(name)
    if chain is None:
        raise _Error(Step(table.source, table.label, name, None, "", "error"), f"chain {name} does not exist")
    for rule in chain.rules:
        answer = rule.test(pkt)
        if answer is False:
            continue
        step = Step(table.source, table.label, name, rule.number, rule.text, rule.target.kind)
        if answer is not True:
            raise _Error(step, f"{answer} in chain {name} rule {rule.number} ({rule.text})")
        kind = rule.target.kind
        if kind in finals:
            return kind, step, rule
        if kind == RETURN:
            return RETURN, None, None
        if kind == CONTINUE:
            continue
        if kind in (JUMP, GOTO):
            result, inner, hit = _walk(table, str(rule.target.chain), pkt, depth + 1, finals)
            if result in finals:
                return result, inner, hit
            if kind == GOTO:
                return RETURN, None, None
            continue
        raise _Error(step, f"unknown target {rule.target.name or kind} in chain {name} rule {rule.number} "
                     f"({rule.text})")
    return RETURN, None, None


def run_base(base: BaseChain, pkt: Packet) -> tuple[str, Step]:
    """One base chain's verdict for `pkt`: accept or drop (reject counted as drop), with its step."""
    result, step, _ = _walk(base.table, base.chain, pkt, 0)
    if result == RETURN or step is None:
        chain = base.table.chains[base.chain]
        policy = (chain.policy or "accept").lower()
        return (ACCEPT if policy == ACCEPT else DROP), Step(
            base.table.source, base.table.label, base.chain, None, f"policy {policy.upper()}", policy)
    return (ACCEPT if result == ACCEPT else DROP), step


def evaluate(pipeline: Pipeline, pkt: Packet, path: str = "input") -> Verdict:
    """The packet's verdict through every base chain on `path`, in hook and priority order."""
    steps: list[Step] = []
    for base in pipeline.for_packet(pkt, path):
        try:
            result, step = run_base(base, pkt)
        except _Error as exc:
            return Verdict("error", (*steps, exc.step), exc.reason)
        steps.append(step)
        if result != ACCEPT:
            return Verdict("drop", tuple(steps))
    return Verdict("accept", tuple(steps))


# ---------------------------------------------------------------- the source address space
IMPOSSIBLE_SOURCES = {
    4: ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"),
    6: ("::/127", "::ffff:0:0/96", "ff00::/8"),
}


def address(family: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)


def source_segments(pipeline: Pipeline, family: int, extra_points: Iterable[int] = ()) -> list[Interval]:
    """Intervals covering the whole source space of `family`, split on every boundary a rule tests.

    Within one segment every source-address match answers the same, so one address decides it.
    Martian sources (IMPOSSIBLE_SOURCES, which the kernel drops before filtering) are split off
    too, so callers can leave them out.
    """
    top = (1 << ALL_BITS[family]) - 1
    points = {0, *pipeline.src_points(family), *extra_points}
    for text in IMPOSSIBLE_SOURCES[family]:
        points.update(interval_points([network_interval(ipaddress.ip_network(text))]))
    ordered = sorted(p for p in points if 0 <= p <= top)
    out = []
    for i, start in enumerate(ordered):
        end = ordered[i + 1] - 1 if i + 1 < len(ordered) else top
        out.append((start, end))
    return out


def impossible(family: int, interval: Interval) -> bool:
    """True when the segment lies inside a martian range (never a real TCP source)."""
    for text in IMPOSSIBLE_SOURCES[family]:
        lo, hi = network_interval(ipaddress.ip_network(text))
        if lo <= interval[0] and interval[1] <= hi:
            return True
    return False


def interval_prefixes(family: int, interval: Interval) -> list[str]:
    """The CIDR prefixes exactly covering an interval."""
    first, last = address(family, interval[0]), address(family, interval[1])
    return [str(n) for n in ipaddress.summarize_address_range(first, last)]


def merge(intervals: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def nat_destination(table: Table, pkt: Packet, chain: str = "PREROUTING") -> tuple[str, int, Step] | str | None:
    """Walk a nat table's PREROUTING (OUTPUT for the host's own packets) for `pkt`: (address, port,
    step) when a DNAT rule rewrites it, None when nothing does, or the reason when it cannot be decided."""
    if chain not in table.chains:
        return None
    try:
        kind, step, rule = _walk(table, chain, pkt, 0, finals=(DNAT, ACCEPT, DROP, REJECT))
    except _Error as exc:
        return exc.reason
    if kind != DNAT or rule is None or step is None:
        return None
    dest = rule.target.options.get("--to-destination", "")
    host, port = _split_hostport(dest, pkt.dport)
    if host is None:
        return f"DNAT target {dest!r} in nat rule {rule.number} is not a single address"
    return host, port, step


def _split_hostport(text: str, default_port: int) -> tuple[str | None, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if "-" in host or "-" in port:
        return None, default_port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None, default_port
    return host, int(port) if port.isdigit() else default_port
