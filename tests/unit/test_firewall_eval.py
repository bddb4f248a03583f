"""The iptables-save and nft JSON parsers and the kernel-order walk, rule by rule.

The nft expressions are in the exact JSON form nft 1.0.6 prints them (recorded from `nft -j`).
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

import pytest

from auditor.judge.firewall import evaluate as fweval
from auditor.judge.firewall.evaluate import Packet, Pipeline, evaluate, source_segments
from auditor.judge.firewall.iptables import ParseError, base_chains, parse_save
from auditor.judge.firewall.nftables import parse_ruleset

HEAD = "*filter\n:INPUT {policy} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{chains}"


def ipt(rules: str, policy: str = "ACCEPT", chains: str = "", tool: str = "iptables") -> Pipeline:
    text = HEAD.format(policy=policy, chains=chains) + rules.strip() + "\nCOMMIT\n"
    return Pipeline(base_chains(parse_save(text, tool)))


def pkt(src: str, dst: str = "10.0.0.10", iif: str = "eth0", dport: int = 5000) -> Packet:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return Packet(s.version, s, d, dport, iif, local=frozenset({d}))


def result(pipeline: Pipeline, packet: Packet) -> str:
    return evaluate(pipeline, packet).result


def test_source_negation_and_mask_forms() -> None:
    p = ipt("-A INPUT ! -s 10.0.0.0/255.255.0.0 -p tcp -m tcp --dport 5000 -j DROP")
    assert result(p, pkt("10.0.200.1")) == "accept"
    assert result(p, pkt("10.1.0.1")) == "drop"
    old = ipt("-A INPUT -s ! 10.0.0.0/16 -p tcp -m tcp --dport 5000 -j DROP")
    assert result(old, pkt("10.1.0.1")) == "drop" and result(old, pkt("10.0.0.1")) == "accept"


def test_interface_wildcards_and_negation() -> None:
    p = ipt("-A INPUT -i eth+ -p tcp -m tcp --dport 5000 -j DROP\n-A INPUT ! -i lo -p tcp -j REJECT")
    assert result(p, pkt("10.9.9.9", iif="eth1")) == "drop"
    assert result(p, pkt("10.9.9.9", iif="ens3")) == "drop"  # REJECT counts as refused
    assert evaluate(p, pkt("10.9.9.9", iif="ens3")).steps[-1].rule == 2
    assert result(p, pkt("127.0.0.1", "127.0.0.1", iif="lo")) == "accept"


def test_multiport_ranges_and_lists() -> None:
    p = ipt("-A INPUT -p tcp -m multiport --dports 80,4000:5999 -j DROP")
    assert result(p, pkt("1.2.3.4", dport=5000)) == "drop"
    assert result(p, pkt("1.2.3.4", dport=6000)) == "accept"
    assert result(p, pkt("1.2.3.4", dport=80)) == "drop"


def test_udp_rule_does_not_match_tcp() -> None:
    p = ipt("-A INPUT -p udp -m udp --dport 5000 -j DROP")
    assert result(p, pkt("1.2.3.4")) == "accept"


def test_conntrack_states_of_a_first_syn() -> None:
    p = ipt("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
            "-A INPUT -m state --state INVALID -j ACCEPT\n"
            "-A INPUT -m conntrack ! --ctstate NEW -j ACCEPT", policy="DROP")
    assert result(p, pkt("1.2.3.4")) == "drop"
    q = ipt("-A INPUT -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT", policy="DROP")
    assert result(q, pkt("1.2.3.4")) == "accept"


def test_tcp_flags() -> None:
    assert result(ipt("-A INPUT -p tcp ! --syn -j ACCEPT", policy="DROP"), pkt("1.2.3.4")) == "drop"
    assert result(ipt("-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN -j ACCEPT", policy="DROP"),
                  pkt("1.2.3.4")) == "accept"


def test_goto_skips_the_rest_of_the_calling_chain_but_jump_does_not() -> None:
    chains = ":EMPTY - [0:0]\n"
    jumped = ipt("-A INPUT -j EMPTY\n-A INPUT -p tcp -j DROP", chains=chains)
    went = ipt("-A INPUT -g EMPTY\n-A INPUT -p tcp -j DROP", chains=chains)
    assert result(jumped, pkt("1.2.3.4")) == "drop"
    assert result(went, pkt("1.2.3.4")) == "accept"  # EMPTY returns past INPUT: the policy decides


def test_log_continues_and_counting_rules_continue() -> None:
    p = ipt('-A INPUT -p tcp -j LOG --log-prefix "x y "\n-A INPUT -s 1.2.3.4/32\n-A INPUT -p tcp -j DROP')
    verdict = evaluate(p, pkt("1.2.3.4"))
    assert verdict.result == "drop" and verdict.steps[-1].rule == 3


def test_unknown_target_is_an_error_only_when_reached() -> None:
    p = ipt("-A INPUT -s 9.9.9.9/32 -j MARK --set-mark 1\n-A INPUT -p tcp -j DROP")
    assert result(p, pkt("1.2.3.4")) == "drop"
    verdict = evaluate(p, pkt("9.9.9.9"))
    assert verdict.result == "error" and "unknown target MARK in chain INPUT rule 1" in verdict.reason


def test_addrtype_and_iprange() -> None:
    p = ipt("-A INPUT -m addrtype --dst-type LOCAL -m iprange --src-range 1.1.1.1-1.1.1.9 -j DROP")
    assert result(p, pkt("1.1.1.5")) == "drop"
    assert result(p, pkt("1.1.1.10")) == "accept"
    points = Pipeline(p.chains).src_points(4)
    assert int(ipaddress.ip_address("1.1.1.1")) in points and int(ipaddress.ip_address("1.1.1.10")) in points


def test_ip6tables_family() -> None:
    p = ipt("-A INPUT -s fd00:0:5::/64 -p tcp -m tcp --dport 5000 -j ACCEPT\n-A INPUT -p tcp -j DROP",
            tool="ip6tables")
    assert result(p, pkt("fd00:0:5::20", "fd00::10")) == "accept"
    assert result(p, pkt("fd00:0:6::20", "fd00::10")) == "drop"
    assert result(p, pkt("10.0.5.20")) == "accept"  # an ip6tables table never sees IPv4


@pytest.mark.parametrize("text", [
    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n",              # no COMMIT
    "*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j ACCEPT\nCOMMIT\n",       # undeclared chain
    "-A INPUT -j ACCEPT\n",                                             # outside a table
    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s fd00::1 -j ACCEPT\nCOMMIT\n",  # v6 address in iptables
])
def test_malformed_save_output(text: str) -> None:
    with pytest.raises(ParseError):
        parse_save(text, "iptables")


# ---------------------------------------------------------------- nftables
def nft(rules: list[list[dict[str, Any]]], policy: str = "accept", family: str = "inet",
        sets: list[dict[str, Any]] | None = None, extra: list[dict[str, Any]] | None = None) -> Pipeline:
    items: list[dict[str, Any]] = [{"table": {"family": family, "name": "t", "handle": 1}}]
    items += [{"set": {"family": family, "table": "t", **s}} for s in sets or []]
    items.append({"chain": {"family": family, "table": "t", "name": "input", "handle": 1, "type": "filter",
                            "hook": "input", "prio": 0, "policy": policy}})
    items += [{"rule": {"family": family, "table": "t", "chain": "input", "handle": i + 2, "expr": expr}}
              for i, expr in enumerate(rules)]
    items += extra or []
    parsed = parse_ruleset({"nftables": items})
    assert not parsed.unsupported
    return Pipeline(parsed.base)


def match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}


def test_nft_prefix_range_and_comparison() -> None:
    p = nft([[match(SADDR, {"prefix": {"addr": "10.0.5.0", "len": 24}}), match(DPORT, 1024, "<"), {"drop": None}],
             [match(SADDR, {"range": ["10.0.6.1", "10.0.6.9"]}), {"drop": None}]])
    assert result(p, pkt("10.0.5.1", dport=22)) == "drop"
    assert result(p, pkt("10.0.5.1", dport=5000)) == "accept"
    assert result(p, pkt("10.0.6.5")) == "drop"
    assert result(p, pkt("fd00::1", "fd00::10")) == "accept"  # ip saddr never matches IPv6 in inet


def test_nft_named_set_and_missing_set() -> None:
    sets = [{"name": "ok", "type": "ipv4_addr", "flags": ["interval"], "elem": [{"prefix": {"addr": "10.0.1.0",
                                                                                           "len": 24}}]}]
    p = nft([[match(SADDR, "@ok"), {"accept": None}], [match(DPORT, 5000), {"drop": None}]], sets=sets)
    assert result(p, pkt("10.0.1.7")) == "accept" and result(p, pkt("10.0.2.7")) == "drop"
    q = nft([[match(SADDR, "@nope"), {"accept": None}]], policy="drop")
    verdict = evaluate(q, pkt("10.0.1.7"))
    assert verdict.result == "error" and "set @nope" in verdict.reason


def test_nft_tcp_flags_fib_and_iifname_wildcard() -> None:
    flags = {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "ack"]]}
    p = nft([[match({"meta": {"key": "iifname"}}, "eth*"), match(flags, "syn"),
              match({"fib": {"result": "type", "flags": ["daddr"]}}, "local"), {"drop": None}]])
    assert result(p, pkt("1.2.3.4", iif="eth7")) == "drop"
    assert result(p, pkt("1.2.3.4", iif="wg0")) == "accept"


def test_nft_limit_and_unknown_expressions_are_errors_when_reached() -> None:
    p = nft([[match(DPORT, 22), {"limit": {"rate": 10, "per": "second"}}, {"accept": None}],
             [match(DPORT, 5000), {"limit": {"rate": 10, "per": "second"}}, {"accept": None}]], policy="drop")
    verdict = evaluate(p, pkt("1.2.3.4"))
    assert verdict.result == "error" and "rule 2" in verdict.reason and "limit" in verdict.reason


def test_nft_vmap_expands_to_one_rule_per_key() -> None:
    vmap = {"vmap": {"key": SADDR, "data": {"set": [["10.0.1.10", {"accept": None}],
                                                     [{"prefix": {"addr": "10.0.99.0", "len": 24}}, {"drop": None}]]}}}
    p = nft([[match(DPORT, 5000), vmap]], policy="drop")
    assert result(p, pkt("10.0.1.10")) == "accept"
    v = evaluate(p, pkt("10.0.99.1"))
    assert v.result == "drop" and v.steps[-1].rule == 1  # both keys belong to rule 1
    assert result(p, pkt("10.0.50.1")) == "drop" and evaluate(p, pkt("10.0.50.1")).steps[-1].rule is None


def test_every_base_chain_must_accept_in_priority_order() -> None:
    items = [
        {"table": {"family": "ip", "name": "a", "handle": 1}},
        {"chain": {"family": "ip", "table": "a", "name": "late", "handle": 1, "type": "filter", "hook": "input",
                   "prio": 10, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "a", "name": "early", "handle": 2, "type": "filter", "hook": "input",
                   "prio": -10, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "a", "chain": "early", "handle": 3, "expr": [{"accept": None}]}},
        {"rule": {"family": "ip", "table": "a", "chain": "late", "handle": 4,
                  "expr": [match(SADDR, "6.6.6.6"), {"drop": None}]}},
    ]
    p = Pipeline(parse_ruleset({"nftables": items}).base)
    v = evaluate(p, pkt("6.6.6.6"))
    assert v.result == "drop"
    assert [s.chain for s in v.steps] == ["early", "late"]  # an accept ends one base chain only


def test_nft_exclusion_unsupported_hooks_and_dnat() -> None:
    items = [
        {"table": {"family": "ip", "name": "filter", "handle": 1}},
        {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
        {"table": {"family": "netdev", "name": "edge", "handle": 2}},
        {"chain": {"family": "netdev", "table": "edge", "name": "in", "handle": 1, "type": "filter",
                   "hook": "ingress", "prio": 0, "dev": "eth0", "policy": "accept"}},
        {"table": {"family": "ip", "name": "n", "handle": 3}},
        {"chain": {"family": "ip", "table": "n", "name": "pre", "handle": 1, "type": "nat",
                   "hook": "prerouting", "prio": -100, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "n", "chain": "pre", "handle": 2,
                  "expr": [match(DPORT, 80), {"dnat": {"addr": "10.0.0.10", "port": 5000}}]}},
    ]
    parsed = parse_ruleset({"nftables": items}, exclude=[("ip", "filter")])
    assert parsed.skipped == ["ip filter"]
    assert [b.chain for b in parsed.base] == []
    assert len(parsed.unsupported) == 2
    assert any("ingress" in u for u in parsed.unsupported) and any("destination NAT" in u for u in parsed.unsupported)


def test_segments_cover_the_space_and_split_on_rule_boundaries() -> None:
    p = ipt("-A INPUT -s 10.0.5.0/24 -j ACCEPT\n-A INPUT -m iprange --src-range 10.0.6.3-10.0.6.4 -j DROP")
    segs = source_segments(p, 4)
    assert segs[0][0] == 0 and segs[-1][1] == 2**32 - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(segs))
    starts = {fweval.address(4, s[0]) for s in segs}
    for edge in ("10.0.5.0", "10.0.6.0", "10.0.6.3", "10.0.6.5"):
        assert ipaddress.ip_address(edge) in starts


def test_nft_stateful_statements_are_not_skipped_silently() -> None:
    # notrack makes the packet UNTRACKED, so a later `ct state new` would not match: not modelled
    p = nft([[match(DPORT, 5000), {"notrack": None}], [{"counter": {"packets": 0, "bytes": 0}},
                                                      {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}]])
    verdict = evaluate(p, pkt("1.2.3.4"))
    assert verdict.result == "error" and "notrack" in verdict.reason
    assert result(p, pkt("1.2.3.4", dport=22)) == "accept"  # counter and mangle continue


def _random_ruleset(rng: Any) -> Pipeline:
    """A random INPUT ruleset over 10.0.0.0/16 sources: prefixes, ranges, negations, jumps, RETURN."""
    def cond() -> str:
        kind = rng.choice(["prefix", "range", "neg", "none"])
        a, b = sorted(rng.sample(range(256), 2))
        if kind == "prefix":
            return f"-s 10.0.{a}.0/{rng.choice([16, 20, 23, 24, 25, 30, 32])} "
        if kind == "range":
            return f"-m iprange --src-range 10.0.{a}.{rng.randrange(256)}-10.0.{b}.{rng.randrange(256)} "
        if kind == "neg":
            return f"! -s 10.0.{a}.0/{rng.choice([18, 24, 28])} "
        return ""

    lines = []
    for chain in ("INPUT", "A", "B"):
        for _ in range(rng.randrange(1, 6)):
            target = rng.choice(["ACCEPT", "DROP", "RETURN", "LOG"] + (["A", "B"] if chain == "INPUT" else
                                                                       ["B"] if chain == "A" else []))
            if chain == "INPUT" and target == "RETURN":
                target = "DROP"
            lines.append(f"-A {chain} {cond()}-p tcp -m tcp --dport 5000 -j {target}")
    return ipt("\n".join(lines), policy=rng.choice(["ACCEPT", "DROP"]), chains=":A - [0:0]\n:B - [0:0]\n")


def test_one_address_per_segment_decides_the_whole_segment() -> None:
    """The splitting argument, checked: every address of a segment gets its representative's verdict."""
    import random

    rng = random.Random(20261128)
    for _ in range(40):
        p = _random_ruleset(rng)
        segments = source_segments(p, 4)
        for lo, hi in segments:
            first = result(p, pkt(str(fweval.address(4, lo))))
            for value in {hi, (lo + hi) // 2, lo + rng.randrange(hi - lo + 1)}:
                assert result(p, pkt(str(fweval.address(4, value)))) == first
