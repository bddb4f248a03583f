"""firewall.registry-port judged on recorded rulesets (tests/fixtures/firewall, see its README).

Each fixture is real output of iptables-save, ip6tables-save and `nft -j list ruleset` after
loading a ruleset into a scratch namespace; the expected verdicts are worked out by hand from
the rules (comments say why), never read back from the evaluator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from auditor.checks.firewall import registry_port

from auditor.checkapi import Evidence, Outcome, ProbeRecord
from auditor.model import Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firewall"
GUIDE_V4 = ["10.0.1.10/32", "10.0.5.0/24", "10.0.10.0/24"]
LAB_V6 = ["fd00:0:1::10/128", "fd00:0:5::/64", "fd00:0:10::/64"]
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def rulesets(name: str, *, iptables: bool = True, nft: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if iptables:
        for tool in ("iptables", "ip6tables"):
            text = (FIXTURES / f"{name}.{tool}").read_text()
            out[tool] = {"tool": f"{tool}-save", "text": text, "variant": "nf_tables"}
    if nft:
        out["nft"] = {"json": json.loads((FIXTURES / f"{name}.nft.json").read_text())}
    return out


def facts(name: str, listen: list[str] | None, **extra: Any) -> dict[str, Any]:
    """host.firewall facts for the lab's registry host (eth0 10.0.0.10 / fd00::10) with `name`'s rules."""
    base: dict[str, Any] = {
        "registry_port": 5000,
        "port_source": "config.registry http.addr",
        "listen": listen,
        "containerised": False,
        "published_ports": [],
        "interfaces": {"lo": ["127.0.0.1", "::1"], "eth0": ["10.0.0.10", "fd00::10", "fe80::1"]},
        "routes": [{"family": 4, "dst": "10.0.0.0/16", "dev": "eth0"}, {"family": 4, "dst": "default", "dev": "eth0"},
                   {"family": 6, "dst": "fd00::/32", "dev": "eth0"}, {"family": 6, "dst": "default", "dev": "eth0"}],
        "rulesets": rulesets(name),
    }
    base.update(extra)
    return base


def judge(data: dict[str, Any], v4: list[str] = GUIDE_V4, v6: list[str] | None = None) -> dict[str, Outcome]:
    ev = Evidence({"host.firewall": ProbeRecord("host.firewall", "ok", data)}, NOW)
    params = {"allowed_sources_v4": v4, "allowed_sources_v6": v6 if v6 is not None else []}
    out = {o.subject: o for o in registry_port.judge(ev, params)}
    assert out, "the check must always say something"
    return out


def statuses(out: dict[str, Outcome]) -> dict[str, str]:
    return {k: v.status.value for k, v in out.items()}


def test_guide_with_errata_passes_both_families_when_registry_listens_on_them() -> None:
    out = judge(facts("guide-errata", ["10.0.0.10", "fd00::10"]), v6=LAB_V6)
    assert statuses(out) == {"IPv4": "pass", "IPv6": "pass", "local connections": "pass"}
    # the outsiders' fate is decided by the final DROP of each family, and the evidence says so
    assert "-A INPUT -p tcp -m tcp --dport 5000 -j DROP" in out["IPv4"].message
    allowed = {row["network"]: row["accepted"] for row in out["IPv4"].observed["allowed"]}
    assert allowed == {n: "all" for n in GUIDE_V4}
    assert sorted(out["IPv4"].observed["accepted"]) == sorted(GUIDE_V4)


def test_ipv6_allowed_sources_come_from_the_profile() -> None:
    # the profile allows no IPv6 source: the proxy's IPv6 address is then an outsider let in by rule 2
    out = judge(facts("guide-errata", ["10.0.0.10", "fd00::10"]), v6=[])
    assert out["IPv6"].status is Status.FAIL
    assert "(fd00:0:1::10/128, fd00:0:5::/64, fd00:0:10::/64)" in out["IPv6"].message
    assert "ip6tables filter INPUT rule 2" in out["IPv6"].message


def test_loopback_bound_registry_judges_ipv4_rules_and_skips_ipv6() -> None:
    out = judge(facts("guide-errata", ["127.0.0.1"]))
    assert statuses(out) == {"IPv4": "pass", "IPv6": "skip", "local connections": "pass"}
    assert "does not listen on IPv6" in out["IPv6"].message


def test_guide_as_written_drops_the_proxys_own_connection() -> None:
    # docs/guide-notes.md#firewall-loopback-and-ipv6: without -i lo -j ACCEPT first, 127.0.0.1 -> 127.0.0.1:5000 hits the DROP (rule 4)
    out = judge(facts("guide-as-written", ["127.0.0.1"]))
    assert out["IPv4"].status is Status.PASS
    local = out["local connections"]
    assert local.status is Status.FAIL
    assert "127.0.0.1:5000" in local.message and "rule 4" in local.message and "docs/guide-notes.md#firewall-loopback-and-ipv6" in local.message


def test_no_rules_and_registry_on_every_address_fails_both_families() -> None:
    out = judge(facts("empty", ["0.0.0.0", "::"]), v6=LAB_V6)
    assert out["IPv4"].status is Status.FAIL and out["IPv6"].status is Status.FAIL
    # nothing filters: every routable source is accepted
    assert "0.0.0.0/0" not in out["IPv4"].observed["accepted"]  # martians are excluded...
    accepted = [ipaddress.ip_network(p) for p in out["IPv4"].observed["accepted"]]
    assert ipaddress.ip_network("8.8.8.0/24").subnet_of(next(n for n in accepted if n.overlaps(
        ipaddress.ip_network("8.8.8.0/24"))))  # ...but a public sample is in
    assert "nothing filters" in out["IPv4"].message
    assert "every source outside the allowed networks" in out["IPv4"].message
    assert "e.g. 8.8.8.8" in out["IPv4"].message and "e.g. 2001:4860:4860::8888" in out["IPv6"].message


def test_jumps_gotos_and_return_in_user_chains() -> None:
    # 10.0.5.128/25 RETURNs from TRUSTED into REGISTRY and falls to LOGDROP (LOG continues, DROP);
    # 10.0.10.0/24 reaches TRUSTED by goto and is accepted there.
    out = judge(facts("user-chains", ["10.0.0.10"]))
    v4 = out["IPv4"]
    assert v4.status is Status.FAIL
    rows = {row["network"]: row for row in v4.observed["allowed"]}
    assert rows["10.0.1.10/32"]["accepted"] == "all"
    assert rows["10.0.10.0/24"]["accepted"] == "all"
    assert rows["10.0.5.0/24"]["accepted"] == "partly"
    assert rows["10.0.5.0/24"]["refused"] == ["10.0.5.128/25"]
    assert "LOGDROP rule 2: -A LOGDROP -j DROP" in v4.message
    # re-judged with a profile that allows only the lower half, the same evidence passes
    again = judge(facts("user-chains", ["10.0.0.10"]), v4=["10.0.1.10/32", "10.0.5.0/25", "10.0.10.0/24"])
    assert again["IPv4"].status is Status.PASS


def test_drop_policy_with_accept_rules_and_established_rules() -> None:
    # ESTABLISHED/RELATED rules never admit a first SYN; the allowed sources are accepted by NEW,
    # --syn and port-range rules; everyone else meets the DROP policy.
    out = judge(facts("drop-policy", ["0.0.0.0", "::"]), v6=["fd00:0:1::10/128"])
    assert statuses(out) == {"IPv4": "pass", "IPv6": "pass", "local connections": "pass"}
    assert "policy DROP" in out["IPv4"].message
    # the runtime subnet is admitted by the 4000:6000 range rule, not by the ESTABLISHED ones
    row = next(r for r in out["IPv4"].observed["allowed"] if r["network"] == "10.0.10.0/24")
    assert row["decided_by"]["steps"][-1]["rule"] == 7
    strict = judge(facts("drop-policy", ["0.0.0.0", "::"]), v6=LAB_V6)
    assert strict["IPv6"].status is Status.FAIL
    assert "fd00:0:5::/64" in strict["IPv6"].message and "policy DROP" in strict["IPv6"].message


def test_leaky_rule_lets_the_whole_site_in() -> None:
    out = judge(facts("leaky", ["10.0.0.10"]))
    assert out["IPv4"].status is Status.FAIL
    assert out["IPv4"].observed["accepted"] == ["10.0.0.0/16"]
    assert "rule 3: -A INPUT -s 10.0.0.0/16" in out["IPv4"].message


def test_unknown_match_on_a_reachable_rule_is_an_error_not_a_guess() -> None:
    out = judge(facts("unknown-match", ["10.0.0.10"]))
    v4 = out["IPv4"]
    assert v4.status is Status.ERROR
    # rule 2 (-p udp -m mark) cannot match TCP, so only rule 6 is undecidable
    assert "unknown match -m mark in chain INPUT rule 6" in v4.message


def test_nftables_native_ruleset_with_named_and_anonymous_sets() -> None:
    out = judge(facts("nft-native", ["10.0.0.10", "fd00::10"]), v6=LAB_V6)
    assert statuses(out) == {"IPv4": "pass", "IPv6": "pass", "local connections": "pass"}
    assert "nftables inet regfw reg rule 3" in out["IPv4"].message


def test_nftables_verdict_maps_and_drop_policy() -> None:
    out = judge(facts("nft-vmap", ["0.0.0.0", "::"]), v6=["fd00:0:1::10/128"])
    assert statuses(out) == {"IPv4": "pass", "IPv6": "pass", "local connections": "pass"}
    assert "policy DROP" in out["IPv4"].message
    wide = judge(facts("nft-vmap", ["0.0.0.0", "::"]), v6=LAB_V6)
    assert wide["IPv6"].status is Status.FAIL


def test_native_nft_chain_on_another_hook_filters_too() -> None:
    # iptables-nft rules (from iptables-save) plus a native prerouting chain dropping 10.0.5.128/25:
    # the packet must pass both, so half the CI subnet is refused
    out = judge(facts("mixed", ["10.0.0.10", "fd00::10"]), v6=LAB_V6)
    assert out["IPv6"].status is Status.PASS
    v4 = out["IPv4"]
    assert v4.status is Status.FAIL
    row = next(r for r in v4.observed["allowed"] if r["network"] == "10.0.5.0/24")
    assert row["refused"] == ["10.0.5.128/25"]
    assert "nftables ip extra pre rule 1" in v4.message


def test_iptables_nft_tables_are_judged_from_iptables_save_not_their_opaque_nft_form() -> None:
    # in nft's JSON, multiport/comment/iprange rules are opaque `xt` matches
    data = facts("user-chains", ["10.0.0.10"])
    assert judge(data)["IPv4"].status is Status.FAIL  # decided, from iptables-save
    data["rulesets"] = rulesets("user-chains", iptables=False)
    out = judge(data)["IPv4"]
    assert out.status is Status.ERROR and "xt match" in out.message


def test_docker_published_port_bypasses_input_and_is_filtered_in_forward() -> None:
    published = [{"container_port": 5000, "proto": "tcp", "host_ip": "", "host_port": 5000}]
    extra = {"containerised": True, "published_ports": published,
             "interfaces": {"lo": ["127.0.0.1"], "eth0": ["10.0.0.10"], "docker0": ["172.17.0.1"]},
             "routes": [{"family": 4, "dst": "10.0.0.0/16", "dev": "eth0"},
                        {"family": 4, "dst": "172.17.0.0/16", "dev": "docker0"}]}
    weak = judge(facts("docker-weak", ["0.0.0.0"], **extra) | {"rulesets": rulesets("docker-weak")})
    # the INPUT DROP for 5000 never sees DNATed packets: Docker's own ACCEPT lets everyone in
    assert weak["IPv4"].status is Status.FAIL
    assert "DOCKER rule 1" in weak["IPv4"].message
    assert weak["IPv4"].observed["outsiders"][0]["path"] == "forward"
    hardened = judge(facts("docker-user", ["0.0.0.0"], **extra) | {"rulesets": rulesets("docker-user")})
    assert hardened["IPv4"].status is Status.PASS
    assert "DOCKER-USER rule 5" in hardened["IPv4"].message
    assert "local connections" not in hardened  # local traffic to a container goes through docker-proxy


def test_unreadable_ruleset_is_an_error() -> None:
    data = facts("guide-errata", ["10.0.0.10"])
    data["rulesets"]["nft"] = {"error": "Operation not permitted"}
    out = judge(data)
    assert statuses(out) == {"ruleset": "error"}
    assert "Operation not permitted" in out["ruleset"].message


def test_malformed_iptables_save_is_an_error() -> None:
    data = facts("guide-errata", ["10.0.0.10"])
    data["rulesets"]["iptables"]["text"] = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --bogus\nCOMMIT\n"
    out = judge(data)
    assert out["ruleset"].status is Status.ERROR and "does not parse" in out["ruleset"].message


@pytest.mark.parametrize("v4", [["fd00::/64"], ["10.0.0.300/24"]])
def test_bad_profile_networks_are_an_error(v4: list[str]) -> None:
    out = judge(facts("guide-errata", ["10.0.0.10"]), v4=v4)
    assert statuses(out) == {"profile": "error"}


def test_unknown_listeners_are_judged_as_listening_everywhere() -> None:
    out = judge(facts("guide-errata", None), v6=[])
    # IPv6 is judged (listeners unknown) and the proxy's IPv6 address is not allowed by this profile
    assert out["IPv6"].status is Status.FAIL
    assert "unknown" in out["IPv6"].observed["judged_because"]


def test_ipv6_loopback_only_listener_does_not_require_ipv6_rules() -> None:
    out = judge(facts("empty", ["127.0.0.1", "::1"]))
    assert out["IPv6"].status is Status.SKIP and "loopback only" in out["IPv6"].message
    assert out["IPv4"].status is Status.FAIL  # the guide's IPv4 rules are always required
    assert out["local connections"].status is Status.PASS
