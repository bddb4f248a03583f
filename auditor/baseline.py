"""Baselines: the findings of an earlier run, so that CI fails only on what is new."""

from __future__ import annotations

from pathlib import Path

from auditor import bounded, history
from auditor.errors import UsageError

FAILING = ("fail", "error")


def failing_pairs(report: dict) -> frozenset[tuple[str, str]]:
    """(check id, subject) of every failing or erroring result of a JSON report."""
    return frozenset(
        (r["check"], r["subject"]) for r in report.get("results", []) if r.get("status") in FAILING
    )


def load_baseline(ref: str) -> frozenset[tuple[str, str]]:
    """A baseline from a JSON report file, or from a run id in the history store."""
    path = Path(ref)
    if path.is_file():
        try:
            data = bounded.load_json_file(path, what="report")
        except bounded.InputError as exc:
            raise UsageError(f"--baseline {ref}: not a readable JSON report: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != "regaudit-report/1":
            raise UsageError(f"--baseline {ref}: not a regaudit JSON report")
        return failing_pairs(data)
    return history.failing_pairs_of_run(ref)
