"""Assembling the recorded rulesets (iptables-save texts, nft JSON) into one evaluator pipeline.

Contract: :func:`assemble` never raises; a ruleset that could not be read or parsed is listed in
`Assembly.problems` (the firewall verdict is then `error`). Pure: the texts come in as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .evaluate import Pipeline, Table
from .iptables import ParseError, base_chains, parse_save
from .nftables import NftParseError, parse_ruleset


# ---------------------------------------------------------------- assembling recorded rulesets
@dataclass
class Assembly:
    """Every filter a packet meets, built from the recorded rulesets, and what could not be read."""

    pipeline: Pipeline
    nat: dict[int, Table] = field(default_factory=dict)
    read: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


IPT_SOURCES = (("iptables", 4), ("ip6tables", 6), ("iptables-legacy", 4), ("ip6tables-legacy", 6))


def assemble(rulesets: dict[str, dict[str, object]]) -> Assembly:
    """Parse the probe's `rulesets` (iptables-save texts, nft JSON) into one pipeline.

    A ruleset that could not be read, or a parse failure, is a problem (the verdict is `error`);
    tables iptables-nft shows in iptables-save are excluded from the nft JSON (same kernel objects).
    """
    asm = Assembly(Pipeline([]))
    exclude: set[tuple[str, str]] = set()
    for name, family in IPT_SOURCES:
        entry = rulesets.get(name)
        if not entry:
            continue
        if entry.get("error"):
            if entry.get("required", True):
                asm.problems.append(f"{name}-save: {entry['error']}")
            continue
        text = entry.get("text")
        if not isinstance(text, str):
            continue
        try:
            tables = parse_save(text, name)
        except ParseError as exc:
            asm.problems.append(f"{name}-save output does not parse: {exc}")
            continue
        asm.read.append(f"{name}-save ({entry.get('variant', '?')})")
        asm.pipeline.chains.extend(base_chains(tables))
        if "nat" in tables and family not in asm.nat:
            asm.nat[family] = tables["nat"]
        if entry.get("variant") == "nf_tables":
            exclude.update(("ip6" if family == 6 else "ip", t) for t in tables)
    nft = rulesets.get("nft") or {}
    if nft.get("error"):
        asm.problems.append(f"nft -j list ruleset: {nft['error']}")
    elif "json" in nft:
        try:
            parsed = parse_ruleset(nft["json"], exclude)
        except NftParseError as exc:
            asm.problems.append(f"nft -j list ruleset does not parse: {exc}")
        else:
            asm.read.append("nft -j list ruleset")
            asm.pipeline.chains.extend(parsed.base)
            asm.problems.extend(parsed.unsupported)
            if parsed.skipped:
                asm.notes.append("nft tables also shown by iptables-nft, judged from iptables-save: "
                                 + ", ".join(sorted(parsed.skipped)))
    else:
        asm.problems.append("the nftables ruleset was not recorded")
    return asm
