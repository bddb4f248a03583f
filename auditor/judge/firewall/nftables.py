"""Parse `nft -j list ruleset` JSON into the evaluator's tables and base chains.

Contract: :func:`parse_ruleset` returns the tables (minus `exclude`, the tables iptables-nft
manages and `iptables-save` already showed: their xt matches are opaque in nft's JSON) and the
base chains on the prerouting, input and forward hooks of filter type. An expression it does not
model becomes :class:`Unknown` (matches) or an ``unknown`` target (statements with effects), so
the evaluator can only err on it, never guess. nat-type chains are not filters and are skipped;
netdev and ingress chains are not modelled and are reported in `unsupported`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from auditor.judge.parse import InputError, load_json

from .evaluate import (
    ACCEPT,
    CONTINUE,
    DROP,
    GOTO,
    JUMP,
    REJECT,
    RETURN,
    UNKNOWN,
    AddrMatch,
    AddrTypeMatch,
    Always,
    BaseChain,
    Chain,
    CtStateMatch,
    FamilyMatch,
    IfaceMatch,
    Interval,
    Match,
    Packet,
    PortMatch,
    ProtoMatch,
    Rule,
    Table,
    Target,
    TcpFlagsMatch,
    Tri,
    Unknown,
    network_interval,
)

FAMILIES = {"ip": frozenset({4}), "ip6": frozenset({6}), "inet": frozenset({4, 6})}
HOOKS = ("prerouting", "input", "forward", "output")
VERDICTS = {"accept": ACCEPT, "drop": DROP, "reject": REJECT, "return": RETURN}
# Statements that neither decide nor change what later matches see of a first SYN (`mangle` sets
# marks and fields; a later match on them is not modelled anyway). notrack, set updates and
# quota change state the walk depends on: they stay unknown.
NONTERMINAL = {"counter", "log", "comment", "mangle"}
PROTO_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "ipv6-icmp": "58", "icmpv6": "58"}
TCP_FLAGS = {"payload": {"protocol": "tcp", "field": "flags"}}
L4_FIELDS = (("ip", "protocol"), ("ip6", "nexthdr"))
NFPROTO = {"ipv4": 4, "ipv6": 6, "ip": 4, "ip6": 6, 2: 4, 10: 6, 2048: 4, 34525: 6}


class NftParseError(ValueError):
    """The JSON is not nft's ruleset output."""


@dataclass
class NftRuleset:
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    base: list[BaseChain] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _addr_family(protocol: str) -> int | None:
    return {"ip": 4, "ip6": 6}.get(protocol)


class _Context:
    def __init__(self, sets: dict[str, list[Any]]) -> None:
        self.sets = sets

    def elements(self, right: Any) -> list[Any] | str:
        """The elements a right-hand side stands for, or a reason when it is not a plain value set."""
        if isinstance(right, str) and right.startswith("@"):
            name = right[1:]
            if name not in self.sets:
                return f"set {right} is not in the ruleset"
            return list(self.sets[name])
        if isinstance(right, dict) and "set" in right:
            return list(right["set"])
        if isinstance(right, list):
            return list(right)
        return [right]


def _unwrap(elem: Any) -> Any:
    if isinstance(elem, dict) and "elem" in elem:
        return elem["elem"].get("val")
    return elem


def _addr_intervals(elems: Iterable[Any], family: int) -> tuple[Interval, ...] | str:
    out: list[Interval] = []
    for raw in elems:
        elem = _unwrap(raw)
        try:
            if isinstance(elem, dict) and "prefix" in elem:
                net = ipaddress.ip_network(f"{elem['prefix']['addr']}/{elem['prefix']['len']}", strict=False)
                if net.version != family:
                    return f"address {net} is not IPv{family}"
                out.append(network_interval(net))
            elif isinstance(elem, dict) and "range" in elem:
                lo, hi = (ipaddress.ip_address(v) for v in elem["range"])
                out.append((int(lo), int(hi)))
            elif isinstance(elem, str):
                addr = ipaddress.ip_address(elem)
                if addr.version != family:
                    return f"address {elem} is not IPv{family}"
                out.append((int(addr), int(addr)))
            else:
                return f"address element {json.dumps(elem)}"
        except ValueError:
            return f"address element {json.dumps(elem)}"
    return tuple(out)


def _port_intervals(elems: Iterable[Any]) -> tuple[Interval, ...] | str:
    out: list[Interval] = []
    for raw in elems:
        elem = _unwrap(raw)
        if isinstance(elem, int):
            out.append((elem, elem))
        elif isinstance(elem, dict) and "range" in elem and all(isinstance(v, int) for v in elem["range"]):
            out.append((elem["range"][0], elem["range"][1]))
        elif isinstance(elem, str) and elem.isdigit():
            out.append((int(elem), int(elem)))
        else:
            return f"port element {json.dumps(elem)} (named services are not resolved)"
    return tuple(out)


def _compare(op: str, value: int, top: int) -> tuple[tuple[Interval, ...], bool] | None:
    """Intervals for <, <=, >, >= comparisons (no negation), or None for other operators."""
    if op == "<":
        return ((0, value - 1),) if value > 0 else (), False
    if op == "<=":
        return ((0, value),), False
    if op == ">":
        return ((value + 1, top),) if value < top else (), False
    if op == ">=":
        return ((value, top),), False
    return None


def render(expr: Any) -> str:
    """A compact, nft-like rendering of an expression for evidence."""
    if isinstance(expr, dict) and len(expr) == 1:
        key, val = next(iter(expr.items()))
        if key == "match":
            op = "" if val["op"] in ("==", "in") else f"{val['op']} "
            return f"{render(val['left'])} {op}{render(val['right'])}"
        if key == "payload":
            return f"{val.get('protocol')} {val.get('field')}"
        if key in ("meta", "ct"):
            return f"{key} {val.get('key')}"
        if key == "prefix":
            return f"{val['addr']}/{val['len']}"
        if key == "range":
            return f"{val[0]}-{val[1]}"
        if key == "set":
            return "{ " + ", ".join(render(v) for v in val) + " }"
        if key == "fib":
            return f"fib {' . '.join(val.get('flags', []))} {val.get('result')}"
        if key == "&":
            return f"{render(val[0])} & {render(val[1])}"
        if key in ("jump", "goto"):
            return f"{key} {val['target']}"
        if key in VERDICTS or key == "continue":
            return key
        if key == "counter":
            return "counter"
        if key == "xt":
            return f"xt {val.get('type')} {val.get('name')}"
        if key == "vmap":
            return f"{render(val['key'])} vmap {render(val['data'])}"
        return f"{key} {json.dumps(val)}"
    if isinstance(expr, list):
        return ",".join(render(v) for v in expr)
    return str(expr)


def _flag_set(value: Any) -> frozenset[str] | None:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        return None
    return frozenset(v.upper() for v in items)


def match_of(m: dict[str, Any], ctx: _Context) -> Match:
    """One `match` expression as an evaluator Match (Unknown when not modelled)."""
    text = render({"match": m})
    op, left, right = m.get("op"), m.get("left"), m.get("right")
    negate = op == "!="
    if not isinstance(left, dict) or len(left) != 1:
        return Unknown(text, text)
    kind, spec = next(iter(left.items()))
    elems = ctx.elements(right)
    if isinstance(elems, str):
        return Unknown(elems, text)
    if kind == "payload" and spec.get("field") in ("saddr", "daddr") and _addr_family(spec.get("protocol", "")):
        family = _addr_family(spec["protocol"])
        assert family is not None
        which = "src" if spec["field"] == "saddr" else "dst"
        top = (1 << (32 if family == 4 else 128)) - 1
        compared = None
        if op in ("<", "<=", ">", ">=") and isinstance(right, str):
            try:
                compared = _compare(op, int(ipaddress.ip_address(right)), top)
            except ValueError:
                compared = None
        if compared is not None:
            return AddrMatch(which, family, compared[0], False, text)  # type: ignore[arg-type]
        if op not in ("==", "!=", "in"):
            return Unknown(f"operator {op}", text)
        intervals = _addr_intervals(elems, family)
        if isinstance(intervals, str):
            return Unknown(intervals, text)
        return AddrMatch(which, family, intervals, negate, text)  # type: ignore[arg-type]
    if kind == "payload" and spec.get("field") in ("dport", "sport") and spec.get("protocol") in ("tcp", "udp", "th"):
        proto = None if spec["protocol"] == "th" else spec["protocol"]
        compared = _compare(str(op), right, 65535) if isinstance(right, int) else None
        if compared is not None:
            return PortMatch(spec["field"], compared[0], proto, False, text)
        if op not in ("==", "!=", "in"):
            return Unknown(f"operator {op}", text)
        ports = _port_intervals(elems)
        if isinstance(ports, str):
            return Unknown(ports, text)
        return PortMatch(spec["field"], ports, proto, negate, text)
    if kind == "payload" and spec.get("protocol") == "tcp" and spec.get("field") == "flags":
        flags = _flag_set(right)
        if flags is None:
            return Unknown(text, text)
        if op == "in":  # `tcp flags syn`: any of the flags is set
            return _AnyFlag(flags, text)
        if op in ("==", "!="):
            all_flags = frozenset({"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECN", "CWR"})
            return TcpFlagsMatch(all_flags, flags, negate, text)
        return Unknown(f"operator {op}", text)
    if kind == "&" and isinstance(spec, list) and len(spec) == 2 and spec[0] == TCP_FLAGS:
        mask, comp = _flag_set(spec[1]), _flag_set(right)
        if mask is None or comp is None or op not in ("==", "!="):
            return Unknown(text, text)
        return TcpFlagsMatch(mask, comp, negate, text)
    if kind == "meta" and spec.get("key") in ("iifname", "oifname", "iif", "oif"):
        names = tuple(str(_unwrap(e)) for e in elems)
        direction = "in" if spec["key"].startswith("i") else "out"
        if op not in ("==", "!=", "in"):
            return Unknown(f"operator {op}", text)
        return IfaceMatch(direction, names, negate, text)  # type: ignore[arg-type]
    if (kind == "meta" and spec.get("key") == "l4proto") or (
            kind == "payload" and (spec.get("protocol"), spec.get("field")) in L4_FIELDS):
        if op not in ("==", "!=", "in"):
            return Unknown(f"operator {op}", text)
        protos = frozenset(str(_unwrap(e)) for e in elems)
        protos = protos | {PROTO_NUMBERS[p] for p in protos if p in PROTO_NUMBERS}
        proto_match: Match = ProtoMatch(protos, negate, text)
        if kind == "payload":
            fam = 4 if spec["protocol"] == "ip" else 6
            return _All([FamilyMatch(frozenset({fam})), proto_match], text)
        return proto_match
    if kind == "meta" and spec.get("key") in ("nfproto", "protocol"):
        fams = set()
        for e in elems:
            number = NFPROTO.get(_unwrap(e))
            if number is None:
                return _All([], text, always=False) if not negate else Always(text=text)
            fams.add(number)
        return FamilyMatch(frozenset(fams), negate, text)
    if kind == "ct" and spec.get("key") == "state" and "dir" not in spec:
        states = frozenset(str(_unwrap(e)).upper() for e in elems)
        return CtStateMatch(states, negate, text)
    if kind == "fib" and spec.get("result") == "type" and sorted(spec.get("flags", [])) in (["daddr"], ["saddr"]):
        which = "dst" if spec["flags"] == ["daddr"] else "src"
        return AddrTypeMatch(which, frozenset(str(_unwrap(e)).upper() for e in elems), negate, text)  # type: ignore[arg-type]
    return Unknown(text, text)


class _AnyFlag(Match):
    def __init__(self, flags: frozenset[str], text: str) -> None:
        self.flags = flags
        self.text = text

    def test(self, pkt: Packet) -> Tri:
        return "SYN" in self.flags


class _All(Match):
    """A conjunction (a payload match with its implicit family dependency)."""

    def __init__(self, parts: list[Match], text: str, always: bool = True) -> None:
        self.parts = parts
        self.text = text
        self.always = always

    def test(self, pkt: Packet) -> Tri:
        if not self.always:
            return False
        for part in self.parts:
            answer = part.test(pkt)
            if answer is not True:
                return answer
        return True

    def src_points(self, family: int) -> Iterable[int]:
        return [p for part in self.parts for p in part.src_points(family)]


def _verdict(stmt: dict[str, Any]) -> Target | None:
    key, val = next(iter(stmt.items()))
    if key in VERDICTS:
        return Target(VERDICTS[key], name=key)
    if key == "jump":
        return Target(JUMP, chain=val["target"], name=f"jump {val['target']}")
    if key == "goto":
        return Target(GOTO, chain=val["target"], name=f"goto {val['target']}")
    if key == "continue":
        return Target(CONTINUE, name="continue")
    return None


def _rules_of(exprs: list[dict[str, Any]], ctx: _Context) -> list[tuple[list[Match], Target, str]]:
    """One nft rule as one or more evaluator rules (a verdict map expands to one rule per key)."""
    matches: list[Match] = []
    parts: list[str] = []
    for stmt in exprs:
        if not isinstance(stmt, dict) or len(stmt) != 1:
            return [([*matches, Unknown(f"expression {json.dumps(stmt)}")], Target(UNKNOWN), " ".join(parts))]
        key, val = next(iter(stmt.items()))
        if key != "counter":
            parts.append(render(stmt))
        if key == "match":
            matches.append(match_of(val, ctx))
            continue
        target = _verdict(stmt)
        if target is not None:
            return [(matches, target, " ".join(parts))]
        if key == "vmap":
            return _vmap(matches, val, ctx, " ".join(parts))
        if key == "xt":
            if val.get("type") == "match":
                matches.append(Unknown(f"xt match {val.get('name')}", f"xt match {val.get('name')}"))
                continue
            name = str(val.get("name"))
            if name in ("LOG", "NFLOG"):
                continue
            return [(matches, Target(UNKNOWN, name=f"xt target {name}"), " ".join(parts))]
        if key == "limit":
            matches.append(Unknown("limit (rate-dependent)", render(stmt)))
            continue
        if key in NONTERMINAL:
            continue
        return [(matches, Target(UNKNOWN, name=key), " ".join(parts))]
    return [(matches, Target(CONTINUE, name="(no verdict)"), " ".join(parts))]


def _vmap(matches: list[Match], val: dict[str, Any], ctx: _Context, text: str) -> list[tuple[list[Match], Target, str]]:
    data = val.get("data")
    entries = ctx.elements(data) if not (isinstance(data, dict) and "set" in data) else data["set"]
    if isinstance(entries, str):
        return [([*matches, Unknown(entries, text)], Target(UNKNOWN), text)]
    out = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
            return [([*matches, Unknown(f"verdict map entry {json.dumps(entry)}", text)], Target(UNKNOWN), text)]
        key_match = match_of({"op": "==", "left": val["key"], "right": entry[0]}, ctx)
        target = _verdict(entry[1])
        if target is None:
            return [([*matches, Unknown(f"verdict map entry {json.dumps(entry)}", text)], Target(UNKNOWN), text)]
        out.append(([*matches, key_match], target, f"{text} [{render(entry[0])} : {render(entry[1])}]"))
    return out


def parse_ruleset(data: Any, exclude: Iterable[tuple[str, str]] = ()) -> NftRuleset:
    """Tables and base chains from `nft -j list ruleset` output (parsed JSON or its text).

    Raises NftParseError for anything that is not nft's JSON shape (a missing key, an object where
    a list belongs ...): the firewall verdict is then `error` naming the problem.
    """
    try:
        return _parse_ruleset(data, exclude)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise NftParseError(f"not the JSON shape nft prints ({type(exc).__name__}: {exc})") from None


def _parse_ruleset(data: Any, exclude: Iterable[tuple[str, str]] = ()) -> NftRuleset:
    if isinstance(data, str):
        try:
            data = load_json(data, "nft -j output") if data.strip() else {"nftables": []}
        except InputError as exc:
            raise NftParseError(exc.reason) from None
    if not isinstance(data, dict) or not isinstance(data.get("nftables"), list):
        raise NftParseError("no top-level 'nftables' list")
    skip = set(exclude)
    out = NftRuleset()
    sets: dict[tuple[str, str], dict[str, list[Any]]] = {}
    chains_meta: list[dict[str, Any]] = []
    nat_tables: set[tuple[str, str]] = set()
    rules: list[dict[str, Any]] = []
    for item in data["nftables"]:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, body = next(iter(item.items()))
        if kind == "metainfo":
            continue
        key = (str(body.get("family")), str(body.get("table", body.get("name"))))
        if kind == "table":
            if key in skip:
                out.skipped.append(f"{key[0]} {key[1]}")
                continue
            out.tables[key] = Table("nftables", key[0], key[1])
        elif key in skip:
            continue
        elif kind in ("set", "map"):
            sets.setdefault(key, {})[body["name"]] = list(body.get("elem") or [])
        elif kind == "chain":
            chains_meta.append(body)
        elif kind == "rule":
            rules.append(body)
    for body in chains_meta:
        key = (body["family"], body["table"])
        table = out.tables.setdefault(key, Table("nftables", key[0], key[1]))
        policy = body.get("policy", "accept") if body.get("hook") else None
        table.chains[body["name"]] = Chain(body["name"], policy=policy)
        hook = body.get("hook")
        if not hook:
            continue
        label = f"{key[0]} {key[1]} {body['name']} (hook {hook}, type {body.get('type')})"
        if key[0] == "netdev" or hook == "ingress":
            out.unsupported.append(f"{label}: ingress chains are not modelled")
        elif key[0] in FAMILIES and hook in HOOKS and body.get("type") == "filter":
            prio = body.get("prio", 0)
            if not isinstance(prio, int):
                out.unsupported.append(f"{label}: priority {prio!r} is not a number")
                continue
            out.base.append(BaseChain(table, body["name"], hook, prio, FAMILIES[key[0]]))
        elif key[0] in FAMILIES and hook in ("prerouting", "output") and body.get("type") == "nat":
            nat_tables.add(key)
    for body in rules:
        key = (body["family"], body["table"])
        text = json.dumps(body.get("expr"))
        if key in nat_tables and ('"dnat"' in text or '"redirect"' in text):
            out.unsupported.append(f"{key[0]} {key[1]} {body['chain']}: destination NAT in nft nat chains "
                                   "is not modelled")
        owner = out.tables.get(key)
        chain = owner.chains.get(body["chain"]) if owner else None
        if chain is None:
            raise NftParseError(f"rule for unknown chain {key} {body.get('chain')}")
        ctx = _Context(sets.get(key, {}))
        position = len({r.handle for r in chain.rules}) + 1
        for matches, target, text in _rules_of(body.get("expr") or [], ctx):
            chain.rules.append(Rule(position, matches, target, text, handle=body.get("handle")))
    return out
