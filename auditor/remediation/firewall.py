"""Generator `firewall`: iptables and ip6tables rules (and the nftables equivalent) for the registry port.

Accepted in order: loopback (ERRATA 2), established/related (the auditor's own connections),
the profile's allowed sources (firewall.registry-port allowed_sources_v4/v6); the rest of tcp to
the registry port is dropped. The rules live in a dedicated chain jumped to first from INPUT, so
the site's other rules are untouched.
"""

from __future__ import annotations

from .model import Artifact, FirewallChange, Plan, TextRemedy
from .render import render
from .site import Site

NAME = "firewall"
CHECK = "firewall.registry-port"
CHAIN = "REGAUDIT-REGISTRY"


def rules(family: str, sources: list[str], port: int) -> str:
    tool = "iptables" if family == "ipv4" else "ip6tables"
    return render("iptables.rules.j2", NAME, (CHECK,), tool=tool, chain=CHAIN, sources=sources, port=port)


def generate(site: Site, plan: Plan) -> None:
    if CHECK not in site.failing_ids():
        return
    facts = site.value("host.firewall")
    if not facts:
        plan.notes.append(f"{NAME}: no firewall evidence (host.firewall): rules not generated")
        return
    params = site.params(CHECK)
    port = int(facts.get("registry_port") or 5000)
    v4 = [str(s) for s in params.get("allowed_sources_v4") or []]
    v6 = [str(s) for s in params.get("allowed_sources_v6") or []]
    if facts.get("containerised"):
        plan.texts.append(TextRemedy(CHECK, ("DOCKER-USER",), "The registry is containerised: put the same rules "
                                     "in the DOCKER-USER chain (Docker rewrites INPUT/FORWARD for published ports).",
                                     NAME))
        return
    pid = site.discovery("registry").get("pid")
    for family, sources in (("ipv4", v4), ("ipv6", v6)):
        text = rules(family, sources, port)
        plan.firewall.append(FirewallChange(family=family, restore=text, chain=CHAIN, port=port, ns_pid=pid,
                                            generator=NAME, checks=(CHECK,)))
        plan.artifacts.append(Artifact(f"firewall/{'iptables' if family == 'ipv4' else 'ip6tables'}.rules",
                                       text.encode(), NAME, (CHECK,), f"{family} rules (installed by --apply)"))
    nft = render("nftables.nft.j2", NAME, (CHECK,), port=port, v4=v4, v6=v6)
    plan.artifacts.append(Artifact("firewall/registry.nft", nft.encode(), NAME, (CHECK,),
                                   "nftables equivalent (not installed: use it instead of the iptables rules)"))
    plan.expected.add(CHECK)
