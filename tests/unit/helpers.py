"""Shared helpers for unit tests: judge checks on recorded evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from auditor.checkapi import ProbeRecord
from auditor.model import Result, Status, Vantage
from auditor.plugins import load_checks
from auditor.profile import Profile, load_profile
from auditor.runner import judge_all

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
ALL_VANTAGES = frozenset(Vantage)


def records(**values: Any) -> dict[str, ProbeRecord]:
    """Probe records from keyword values; probe names use '__' for '.' (config__registry)."""
    return {k.replace("__", "."): ProbeRecord(k.replace("__", "."), "ok", v) for k, v in values.items()}


def judge(
    check_id: str,
    evidence: dict[str, ProbeRecord],
    profile: Profile | None = None,
    now: dt.datetime = NOW,
) -> list[Result]:
    """Judge one check on recorded evidence under a profile (seed-hardened by default)."""
    item = load_checks()[check_id]
    return judge_all([item], evidence, profile or load_profile("seed-hardened"), ALL_VANTAGES, now)


def statuses(results: list[Result]) -> list[Status]:
    return [r.status for r in results]


def run_probe(probe: Any, target: Any, evidence: dict[str, Any] | None = None) -> Any:
    """Run one probe through the real probe API, offline: other evidence comes from `evidence`
    (anything else is a ProbeError), and there is no HTTP client."""
    import asyncio

    from auditor.errors import ProbeError
    from auditor.probeapi import ProbeContext

    known = evidence or {}

    async def fetch(name: str) -> Any:
        if name in known:
            return known[name]
        raise ProbeError(f"{name} not gathered in this test")

    def no_http() -> Any:
        raise AssertionError("this probe must not use HTTP")

    async def go() -> Any:
        ctx = ProbeContext(target, None, fetch, no_http, asyncio.get_running_loop().time() + 60)
        return await probe.fn(ctx)

    return asyncio.run(go())
