"""The audit flow: select checks, gather their evidence once, judge, waive, score, gate.

`judge_all` is pure (evidence + profile + time -> results): the live audit and `evaluate`
both call it, which is why re-judging a saved evidence file reproduces the live run exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from auditor.catalog import CheckCatalog
from auditor.checkapi import Check, Evidence, Outcome, ProbeRecord
from auditor.credentials import Credentials
from auditor.errors import EvidenceNotApplicable, ProbeUnavailable
from auditor.evidence import EvidenceFile, utcnow
from auditor.evidence_schema import fit_to_shape
from auditor.gather import Gatherer, ProgressFn, run_main
from auditor.model import Result, Severity, Status, Vantage, WaiverRef
from auditor.probeapi import Probe
from auditor.profile import Profile, Selectable, matches_any
from auditor.redact import redact
from auditor.report import AuditReport
from auditor.scoring import score
from auditor.target import Target

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_NO_AUDIT = 3


@dataclass(frozen=True)
class Selection:
    """The checks a run judges: the profile's selection narrowed by --select/--skip."""

    profile: Profile
    select: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def wants(self, meta: Selectable) -> bool:
        """Whether the run judges the check `meta` describes (its CheckMeta or catalog info)."""
        if not self.profile.selects(meta):
            return False
        if self.select and not matches_any(meta, self.select):
            return False
        return not (self.skip and matches_any(meta, self.skip))

    def apply(self, checks: Mapping[str, Check]) -> list[Check]:
        """The chosen checks; of a catalog (auditor/catalog.py), only their modules are imported."""
        if isinstance(checks, CheckCatalog):
            return checks.choose(self.wants)
        return [item for item in checks.values() if self.wants(item.meta)]


@dataclass
class RunOptions:
    fail_on: Severity = Severity.HIGH
    deadline: float = 300.0
    progress: ProgressFn | None = None
    baseline: frozenset[tuple[str, str]] | None = None
    warnings: list[str] = field(default_factory=list)


def needed_probes(checks: Iterable[Check], vantages: frozenset[Vantage]) -> set[str]:
    return {name for c in checks if c.meta.vantage in vantages for name in c.meta.needs}


def judge_all(
    checks: Sequence[Check],
    records: Mapping[str, ProbeRecord],
    profile: Profile,
    vantages: frozenset[Vantage],
    now: dt.datetime,
) -> list[Result]:
    """Judge every check on the evidence at time `now`; pure and deterministic."""
    evidence = Evidence(records, now)
    results: list[Result] = []
    for item in sorted(checks, key=lambda c: c.id):
        severity = profile.severity_for(item.meta)
        if item.meta.vantage not in vantages:
            results.append(_result(item, severity, Outcome(Status.SKIP, "-", _vantage_reason(item.meta.vantage))))
            continue
        outcomes = _judge_one(item, evidence, profile)
        for outcome in outcomes:
            if profile.warn_as_fail and outcome.status is Status.WARN:
                outcome = Outcome(Status.FAIL, outcome.subject, f"{outcome.message} (warn judged as fail)",
                                  outcome.observed, outcome.expected)
            results.append(_result(item, severity, outcome))
    return apply_waivers(results, profile, now)


def _vantage_reason(vantage: Vantage) -> str:
    if vantage is Vantage.INSIDE:
        return "inside vantage not requested (run with --inside on the registry host)"
    if vantage is Vantage.OUTSIDE:
        return "outside vantage not requested (give the registry's URL)"
    return "content vantage not requested (give the registry's URL, or --inside with filesystem storage)"


def _judge_one(item: Check, evidence: Evidence, profile: Profile) -> list[Outcome]:
    try:
        outcomes = list(item.judge(evidence, profile.params_for(item.meta)))
    except ProbeUnavailable as exc:
        return [Outcome(Status.ERROR, "-", f"could not decide: evidence {exc.probe} unavailable: {exc.reason}")]
    except EvidenceNotApplicable as exc:
        return [Outcome(Status.SKIP, "-", f"not applicable: {exc.reason}")]
    except Exception as exc:
        log.debug("check %s crashed", item.id, exc_info=True)
        return [Outcome(Status.ERROR, "-", f"check crashed: {type(exc).__name__}: {exc}")]
    if not outcomes:
        return [Outcome(Status.ERROR, "-", "check produced no result (engine error)")]
    return outcomes


def _result(item: Check, severity: Severity, outcome: Outcome) -> Result:
    return Result(item.id, outcome.status, severity, outcome.subject, outcome.message,
                  outcome.observed, outcome.expected)


def apply_waivers(results: list[Result], profile: Profile, now: dt.datetime) -> list[Result]:
    """Turn fail/warn results covered by an unexpired waiver into `waived`; mark expired ones."""
    out = []
    for result in results:
        waiver = next((w for w in profile.waivers if w.covers(result.check_id, result.subject)), None)
        if waiver is None or result.status not in (Status.FAIL, Status.WARN):
            out.append(result)
            continue
        expired = waiver.expired(now)
        ref = WaiverRef(waiver.reason, waiver.owner, waiver.expires.isoformat(), expired)
        status = result.status if expired else Status.WAIVED
        message = result.message + (f" (waiver expired {waiver.expires})" if expired else "")
        out.append(Result(result.check_id, status, result.severity, result.subject, message,
                          result.observed, result.expected, ref))
    return out


def waiver_summary(profile: Profile, results: Sequence[Result], now: dt.datetime) -> tuple[dict, ...]:
    rows = []
    for waiver in profile.waivers:
        used = sum(1 for r in results if r.status is Status.WAIVED and waiver.covers(r.check_id, r.subject))
        rows.append({**waiver.to_json(), "expired": waiver.expired(now), "results_waived": used})
    return tuple(rows)


def exit_code(
    results: Sequence[Result],
    fail_on: Severity,
    records: Mapping[str, ProbeRecord],
    baseline: frozenset[tuple[str, str]] | None = None,
) -> int:
    """0 nothing at or above fail_on; 1 fail/error at or above it; 3 nothing could be gathered."""
    if records and all(r.state == "error" for r in records.values()):
        return EXIT_NO_AUDIT
    for result in results:
        if result.status in (Status.FAIL, Status.ERROR) and result.severity >= fail_on:
            if baseline is not None and (result.check_id, result.subject) in baseline:
                continue
            return EXIT_FINDINGS
    return EXIT_OK


def build_report(
    checks: Sequence[Check],
    catalog_size: int,
    target: Target | Mapping,
    profile: Profile,
    evidence: EvidenceFile,
    results: list[Result],
    options: RunOptions,
    now: dt.datetime,
) -> AuditReport:
    metas = {c.id: c.meta for c in checks}
    severities = {c.id: profile.severity_for(c.meta) for c in checks}
    code = exit_code(results, options.fail_on, evidence.records, options.baseline)
    return AuditReport(
        target=target.describe() if isinstance(target, Target) else dict(target),
        profile=profile.to_json(),
        started_at=evidence.started_at,
        ended_at=evidence.ended_at,
        judged_at=now.isoformat(),
        fail_on=options.fail_on,
        exit_code=code,
        results=tuple(results),
        checks=metas,
        severities=severities,
        scores=score(results, metas, severities, catalog_size),
        probes={name: {"state": r.state, "reason": r.reason, "seconds": round(r.seconds, 4)}
                for name, r in evidence.records.items()},
        waivers=waiver_summary(profile, results, now),
        discovery=evidence.discovery,
        warnings=tuple(options.warnings),
        run_id=os.urandom(16).hex(),  # 128 random bits (uuid imports platform: 3 ms of start-up)
    )


async def gather_evidence(
    checks: Sequence[Check],
    probes: Mapping[str, Probe],
    target: Target,
    credentials: Credentials | None,
    options: RunOptions,
) -> EvidenceFile:
    """Run every probe the selected checks need (for the requested vantages), once."""
    started = utcnow()
    gatherer = Gatherer(probes, target, credentials, options.deadline, options.progress)
    records = await gatherer.gather(needed_probes(checks, target.vantages()))
    secrets = (credentials.password.reveal(),) if credentials else ()
    cleaned = {
        name: fit_to_shape(ProbeRecord(r.name, r.state, redact(r.value, secrets), redact(r.reason, secrets),
                                       r.seconds))
        for name, r in records.items()
    }
    return EvidenceFile.gathered(target.describe(), started, cleaned)


def run_audit(
    checks: Mapping[str, Check],
    probes: Mapping[str, Probe],
    target: Target,
    credentials: Credentials | None,
    selection: Selection,
    options: RunOptions,
) -> tuple[AuditReport, EvidenceFile]:
    """A live audit: gather, then judge at the time gathering ended."""
    chosen = selection.apply(checks)
    evidence = run_main(gather_evidence(chosen, probes, target, credentials, options))
    now = dt.datetime.fromisoformat(evidence.judged_at)
    results = judge_all(chosen, evidence.records, selection.profile, target.vantages(), now)
    return build_report(chosen, len(checks), target, selection.profile, evidence, results, options, now), evidence


def evaluate(
    checks: Mapping[str, Check],
    evidence: EvidenceFile,
    selection: Selection,
    options: RunOptions,
    now: dt.datetime | None = None,
) -> AuditReport:
    """Re-judge recorded evidence offline, at the recorded time unless `now` is given."""
    target = Target.from_description(evidence.target)
    chosen = selection.apply(checks)
    when = now or dt.datetime.fromisoformat(evidence.judged_at)
    results = judge_all(chosen, evidence.records, selection.profile, target.vantages(), when)
    return build_report(chosen, len(checks), evidence.target, selection.profile, evidence, results, options, when)
