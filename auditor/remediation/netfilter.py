"""Firewall steps: save, test, install and restore iptables/ip6tables rulesets in a namespace."""

from __future__ import annotations

from auditor.subproc import in_namespaces, run

from .procs import StepError, must

EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def save(tool: str, pid: int | None) -> str:
    """The filter table as `<tool>-save -t filter` prints it (an empty default table when unset)."""
    text = must(in_namespaces(pid, [f"{tool}-save", "-t", "filter"]), f"{tool}-save")
    return text if "*filter" in text else EMPTY_FILTER


def test(tool: str, pid: int | None, rules: str) -> None:
    must(in_namespaces(pid, [f"{tool}-restore", "--test", "--noflush"]), f"{tool}-restore --test", input=rules)


def install(tool: str, pid: int | None, rules: str) -> None:
    must(in_namespaces(pid, [f"{tool}-restore", "--noflush"]), f"{tool}-restore --noflush", input=rules)


def restore(tool: str, pid: int | None, saved: str) -> None:
    """Put the filter table back exactly as saved (flushes it first: the saved text is complete)."""
    cp = run(in_namespaces(pid, [f"{tool}-restore"]), input=saved)
    if cp.returncode != 0:
        raise StepError(f"{tool}-restore of the saved ruleset failed: {cp.stderr.strip()}")
