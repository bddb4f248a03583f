"""The firewall evaluator against the kernel: its verdict for each lab namespace equals a real TCP connect.

On the lab's `firewall` variant the registry listens on its routable addresses (10.0.0.10:5000,
[fd00::10]:5000), so a connect from the proxy, CI, runtime and outsider namespaces shows what the
kernel's filter does. For each ruleset (the hardened and weak labs' own rulesets, and rulesets this
test writes: user chains with jumps/goto/RETURN, a DROP policy with conntrack ESTABLISHED rules,
an nftables-native table, the guide as written) the test loads it into the registry namespace,
gathers `host.firewall` there with the real probe, and compares, for IPv4 and IPv6:
- the evaluator's verdict for each role's address (and for the host's own connection over lo)
  with a real connect from that namespace (and from the registry namespace itself);
- for the lab's rulesets, the check's outcome (hardened passes, weak fails).
The original ruleset is restored afterwards, and the test checks it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from auditor.checks.firewall import registry_port, scene_of
from lab import LabInfo

from auditor.checkapi import Evidence, ProbeRecord
from auditor.judge.firewall.assemble import assemble
from auditor.judge.firewall.reach import reach, route_dev

pytestmark = pytest.mark.integration

ROLES = ("proxy", "ci", "runtime", "outsider")
PORT = 5000
CONNECT_TIMEOUT = 1.5
# Rules that keep the lab's own services (Apache on 80/443, ICMPv6 neighbour discovery) working
# while a test ruleset is loaded: other sessions may be using the firewall lab.
KEEP_V4 = "-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT\n"
KEEP_V6 = KEEP_V4 + "-A INPUT -p ipv6-icmp -j ACCEPT\n"


def _save(head: str, rules: str, chains: str = "", policy: str = "ACCEPT") -> str:
    return (f"*filter\n:INPUT {policy} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{chains}"
            f"{head}{textwrap.dedent(rules).strip()}\nCOMMIT\n")


USER_CHAINS = {
    "v4": _save(KEEP_V4, """
        -A INPUT -i lo -j ACCEPT
        -A INPUT -p tcp -m multiport --dports 5000,5001 -m comment --comment "registry" -j REGISTRY
        -A REGISTRY -s 10.0.1.10/32 -j ACCEPT
        -A REGISTRY -m iprange --src-range 10.0.5.0-10.0.5.255 -j TRUSTED
        -A REGISTRY -s 10.0.10.0/24 -g TRUSTED
        -A REGISTRY -j LOGDROP
        -A TRUSTED -s 10.0.5.0/28 -j RETURN
        -A TRUSTED -j ACCEPT
        -A LOGDROP -j LOG --log-prefix "rgfw drop: "
        -A LOGDROP -j DROP
        """, chains=":REGISTRY - [0:0]\n:TRUSTED - [0:0]\n:LOGDROP - [0:0]\n"),
    "v6": _save(KEEP_V6, """
        -A INPUT -i lo -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 5000 -j REGISTRY
        -A REGISTRY -s fd00:0:1::/48 -j CHECK
        -A REGISTRY -s fd00:0:10::/64 -j ACCEPT
        -A REGISTRY -p tcp -j REJECT --reject-with tcp-reset
        -A CHECK -s fd00:0:1::10/128 -j ACCEPT
        -A CHECK -j RETURN
        """, chains=":REGISTRY - [0:0]\n:CHECK - [0:0]\n"),
}
DROP_POLICY = {
    "v4": _save(KEEP_V4, """
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -m state --state ESTABLISHED -p tcp --dport 5000 -j ACCEPT
        -A INPUT -s 10.0.1.10/32 -p tcp -m tcp --dport 5000 -m conntrack --ctstate NEW -j ACCEPT
        -A INPUT -s 10.0.10.0/24 -p tcp -m tcp --dport 4000:6000 --syn -j ACCEPT
        """, policy="DROP"),
    "v6": _save(KEEP_V6, """
        -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -s fd00:0:5::/64 -p tcp -m tcp --dport 5000 -j ACCEPT
        """, policy="DROP"),
}
GUIDE_AS_WRITTEN = {
    "v4": _save("", """
        -A INPUT -s 10.0.1.10/32 -p tcp --dport 5000 -j ACCEPT
        -A INPUT -s 10.0.5.0/24 -p tcp --dport 5000 -j ACCEPT
        -A INPUT -s 10.0.10.0/24 -p tcp --dport 5000 -j ACCEPT
        -A INPUT -p tcp --dport 5000 -j DROP
        """),
    "v6": _save("", ""),
}
NATIVE_NFT = textwrap.dedent("""
    table inet rgfw {
      set allowed4 { type ipv4_addr; flags interval; elements = { 10.0.1.10, 10.0.10.0/24 } }
      chain registry {
        ip saddr @allowed4 accept
        ip6 saddr { fd00:0:1::10, fd00:0:5::/64 } accept
        meta nfproto ipv4 ip saddr 10.0.5.0/25 accept
        counter drop
      }
      chain input {
        type filter hook input priority 0; policy accept;
        iif lo accept
        ct state established,related accept
        tcp dport vmap { 5000 : jump registry, 5001 : drop }
      }
    }
""")


def run(ns: str, argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, text=True,
                          check=check, timeout=120)


def load(ns: str, v4: str | None, v6: str | None, nft: str | None) -> None:
    """Replace the namespace's whole ruleset."""
    run(ns, ["nft", "flush", "ruleset"])
    if v4 is not None:
        run(ns, ["iptables-restore"], v4)
    if v6 is not None:
        run(ns, ["ip6tables-restore"], v6)
    if nft is not None:
        run(ns, ["nft", "-f", "-"], nft)


def rules_of(ns: str, tool: str) -> list[str]:
    out = run(ns, [f"{tool}-save"]).stdout
    # chain lines carry packet counters ([packets:bytes]) that traffic changes: compare without them
    return [re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines() if line and not line.startswith("#")]


GATHER = """
import asyncio, json, sys
from auditor.gather import Gatherer
from auditor.plugins import load_probes
from auditor.target import Target
target = Target(inside=True, paths={"registry_config": sys.argv[1]})
records = asyncio.run(Gatherer(load_probes(), target, None, 60.0).gather(["host.firewall"]))
rec = records["host.firewall"]
print(json.dumps({"state": rec.state, "value": rec.value, "reason": rec.reason}))
"""


def gather(info: LabInfo) -> dict[str, Any]:
    """host.firewall gathered by the real probe inside the registry namespace."""
    out = run(info.ns("registry"), [sys.executable, "-c", GATHER, info["registry"]["config"]])
    record = json.loads(out.stdout)
    assert record["state"] == "ok", record["reason"]
    return dict(record["value"])


CONNECT = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()"


async def _connect(ns: str, host: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, host, str(PORT), str(CONNECT_TIMEOUT),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return await proc.wait() == 0


def connects(info: LabInfo) -> dict[tuple[str, str], bool]:
    """(role, v4|v6) -> a real TCP connect from the role's namespace to the registry's address opened."""
    reg = info.addresses["registry"]
    keys = [(role, fam) for role in (*ROLES, "registry") for fam in ("v4", "v6")]

    async def all_of() -> list[bool]:
        return await asyncio.gather(*(_connect(info.ns(role), reg[fam]) for role, fam in keys))

    return dict(zip(keys, asyncio.run(all_of()), strict=True))


def predictions(info: LabInfo, facts: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """(role, family) -> the evaluator accepts that role's first SYN (the registry role: over lo)."""
    asm = assemble(facts["rulesets"])
    assert not asm.problems, asm.problems
    scene = scene_of(facts, PORT)
    reg = info.addresses["registry"]
    out = {}
    for role in (*ROLES, "registry"):
        for fam in ("v4", "v6"):
            dst = ipaddress.ip_address(reg[fam])
            src = dst if role == "registry" else ipaddress.ip_address(info.addresses[role][fam])
            iif = "lo" if role == "registry" else route_dev(scene.routes, dst.version, int(src))
            assert iif, f"no route to {src} recorded"
            verdict = reach(asm, scene, dst.version, src, dst, iif).verdict
            assert verdict.result != "error", verdict.reason
            out[(role, fam)] = verdict.result == "accept"
    return out


def judge(info: LabInfo, facts: dict[str, Any]) -> dict[str, str]:
    ev = Evidence({"host.firewall": ProbeRecord("host.firewall", "ok", facts)}, dt.datetime.now(dt.UTC))
    allowed = info["allowed_sources"]
    params = {"allowed_sources_v4": allowed["v4"], "allowed_sources_v6": allowed["v6"]}
    return {o.subject: o.status.value for o in registry_port.judge(ev, params)}


@pytest.fixture(scope="module")
def fw(lab_firewall: LabInfo) -> Iterator[LabInfo]:
    """The firewall lab; its registry namespace's ruleset is restored (and verified) afterwards."""
    ns = lab_firewall.ns("registry")
    saved = {tool: run(ns, [f"{tool}-save"]).stdout for tool in ("iptables", "ip6tables")}
    before = {tool: rules_of(ns, tool) for tool in saved}
    native = run(ns, ["nft", "list", "tables"]).stdout.split()
    assert native.count("table") == sum(1 for t in saved.values() if "*filter" in t), \
        "the firewall lab has native nftables tables this test would not restore"
    try:
        yield lab_firewall
    finally:
        load(ns, saved["iptables"], saved["ip6tables"], None)
        assert {tool: rules_of(ns, tool) for tool in saved} == before


def compare(info: LabInfo, name: str) -> dict[tuple[str, str], bool]:
    facts = gather(info)
    predicted = predictions(info, facts)
    real = connects(info)
    wrong = {k: (predicted[k], real[k]) for k in real if predicted[k] != real[k]}
    assert not wrong, f"{name}: evaluator (first) vs real connect (second) differ: {wrong}"
    return real


def lab_ruleset(info: LabInfo, tool: str) -> str:
    return run(info.ns("registry"), [f"{tool}-save"]).stdout


def test_hardened_ruleset(fw: LabInfo, lab_hardened: LabInfo) -> None:
    load(fw.ns("registry"), lab_ruleset(lab_hardened, "iptables"), lab_ruleset(lab_hardened, "ip6tables"), None)
    real = compare(fw, "hardened")
    assert real == {(r, f): r != "outsider" for r in (*ROLES, "registry") for f in ("v4", "v6")}
    assert judge(fw, gather(fw)) == {"IPv4": "pass", "IPv6": "pass", "local connections": "pass"}


def test_weak_ruleset(fw: LabInfo, lab_weak: LabInfo) -> None:
    load(fw.ns("registry"), lab_ruleset(lab_weak, "iptables"), lab_ruleset(lab_weak, "ip6tables"), None)
    real = compare(fw, "weak")
    assert all(real.values()), "with no rules every namespace connects"
    statuses = judge(fw, gather(fw))
    assert statuses["IPv4"] == "fail" and statuses["IPv6"] == "fail"


def test_user_chains_jumps_goto_return(fw: LabInfo) -> None:
    load(fw.ns("registry"), USER_CHAINS["v4"], USER_CHAINS["v6"], None)
    real = compare(fw, "user chains")
    # ci (10.0.5.20) is past the RETURN range 10.0.5.0/28 -> accepted; ci over IPv6 is rejected
    assert real[("ci", "v4")] and not real[("ci", "v6")] and not real[("outsider", "v4")]
    assert real[("proxy", "v6")] and real[("runtime", "v6")]


def test_drop_policy_and_conntrack_established(fw: LabInfo) -> None:
    load(fw.ns("registry"), DROP_POLICY["v4"], DROP_POLICY["v6"], None)
    real = compare(fw, "drop policy")
    # ESTABLISHED rules let no first SYN in: ci over IPv4 meets the DROP policy
    assert not real[("ci", "v4")] and real[("proxy", "v4")] and real[("runtime", "v4")]
    assert real[("ci", "v6")] and not real[("proxy", "v6")]


def test_nftables_native_ruleset(fw: LabInfo) -> None:
    load(fw.ns("registry"), None, None, NATIVE_NFT)
    real = compare(fw, "nftables native")
    assert real[("proxy", "v4")] and real[("ci", "v4")] and not real[("outsider", "v4")]
    assert not real[("runtime", "v6")] and real[("ci", "v6")]


def test_guide_as_written_drops_local_connections(fw: LabInfo) -> None:
    load(fw.ns("registry"), GUIDE_AS_WRITTEN["v4"], GUIDE_AS_WRITTEN["v6"], None)
    real = compare(fw, "guide as written")
    assert not real[("registry", "v4")], "docs/guide-notes.md#firewall-loopback-and-ipv6: the host's own connection is dropped"
    statuses = judge(fw, gather(fw))
    assert statuses["local connections"] == "fail"


def audit(info: LabInfo, tmp: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    """`regaudit audit --inside` for this check, run inside the lab's registry namespace."""
    out = subprocess.run(
        ["ip", "netns", "exec", info.ns("registry"), "regaudit", "audit", "--inside", "--select",
         "firewall.registry-port", "--no-progress", "--no-history", "--format", "json", "--output", str(tmp),
         "--registry-config", info["registry"]["config"]],
        capture_output=True, text=True, timeout=120, check=False)
    report = json.loads((tmp / "regaudit.json").read_text())
    return out.returncode, {r["subject"]: r for r in report["results"] if r["check"] == "firewall.registry-port"}


def test_audit_passes_on_the_hardened_lab(lab_hardened: LabInfo, tmp_path: Any) -> None:
    # the hardened registry listens on 127.0.0.1:5000 only: the guide's IPv4 rules are judged for the
    # host's addresses (defence in depth), IPv6 is not applicable, lo is accepted first
    code, results = audit(lab_hardened, tmp_path)
    assert {k: r["status"] for k, r in results.items()} == {"IPv4": "pass", "IPv6": "skip",
                                                             "local connections": "pass"}
    assert code == 0
    assert "-A INPUT -p tcp -m tcp --dport 5000 -j DROP" in results["IPv4"]["message"]


def test_audit_fails_on_the_weak_lab_naming_what_lets_outsiders_in(lab_weak: LabInfo, tmp_path: Any) -> None:
    code, results = audit(lab_weak, tmp_path)
    assert results["IPv4"]["status"] == "fail" and results["IPv6"]["status"] == "fail"
    assert code == 1
    for family in ("IPv4", "IPv6"):
        message = results[family]["message"]
        assert "every source outside the allowed networks" in message and "nothing filters it" in message
        assert results[family]["observed"]["outsiders"], "the evidence lists the outsiders let in"
