"""The audit report: one typed model that every report writer reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from auditor import __version__
from auditor.compliance import controls_for
from auditor.model import JSON, CheckMeta, Result, Severity, Status
from auditor.scoring import Scores

REPORT_FORMAT = "regaudit-report/1"


@dataclass(frozen=True)
class AuditReport:
    """Everything about one audit: what was audited, how, and every result."""

    target: Mapping[str, JSON]
    profile: Mapping[str, JSON]
    started_at: str
    ended_at: str
    judged_at: str
    fail_on: Severity
    exit_code: int
    results: tuple[Result, ...]
    checks: Mapping[str, CheckMeta]
    severities: Mapping[str, Severity]
    scores: Scores
    probes: Mapping[str, Mapping[str, JSON]]
    waivers: tuple[Mapping[str, JSON], ...] = ()
    discovery: Mapping[str, JSON] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    history: tuple[Mapping[str, JSON], ...] = ()
    run_id: str = ""
    tool_version: str = __version__
    compliance: tuple[Mapping[str, JSON], ...] = ()
    """Per-control views of the frameworks asked for with --compliance (auditor.compliance.evaluate)."""

    def counts(self) -> dict[str, int]:
        counted = Counter(r.status.value for r in self.results)
        return {s.value: counted.get(s.value, 0) for s in Status}

    def failing(self, at_least: Severity = Severity.INFO) -> list[Result]:
        return [r for r in self.results if r.status in (Status.FAIL, Status.ERROR) and r.severity >= at_least]

    def to_json(self) -> dict[str, JSON]:
        """The JSON report (schema: reports/report.schema.json). Stable ordering, no secrets."""
        return {
            "format": REPORT_FORMAT,
            "tool": {"name": "regaudit", "version": self.tool_version},
            "run_id": self.run_id,
            "target": dict(self.target),
            "profile": dict(self.profile),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "judged_at": self.judged_at,
            "fail_on": self.fail_on.label,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "scores": self.scores.to_json(),
            "checks": [
                {**self.checks[c].to_json(), "severity": self.severities[c].label, "controls": controls_for(c)}
                for c in sorted(self.checks)
            ],
            "results": [r.to_json() for r in self.results],
            "waivers": [dict(w) for w in self.waivers],
            "probes": {k: dict(v) for k, v in sorted(self.probes.items())},
            "discovery": dict(self.discovery),
            "warnings": list(self.warnings),
            "history": [dict(h) for h in self.history],
            "compliance": [dict(v) for v in self.compliance],
        }
