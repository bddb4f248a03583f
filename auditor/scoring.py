"""Scoring: severity weights, per-area and overall scores, a letter grade, coverage.

score = passed weight / applicable weight x 100, by check: a check's status is the rollup of its
results (fail > error > warn > waived > pass > skip). `pass`, `warn` and `waived` count as passed,
`fail` and `error` as not passed, `skip` is not applicable. Any critical check that fails or
errors caps the grade at F, whatever the score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auditor.model import JSON, CheckMeta, Result, Severity, Status, rollup

WEIGHTS: Mapping[Severity, int] = {
    Severity.CRITICAL: 10,
    Severity.HIGH: 5,
    Severity.MEDIUM: 3,
    Severity.LOW: 1,
    Severity.INFO: 0,
}
PASSED = frozenset({Status.PASS, Status.WARN, Status.WAIVED})
GRADES = ((90.0, "A"), (80.0, "B"), (70.0, "C"), (60.0, "D"))


@dataclass(frozen=True)
class AreaScore:
    area: str
    score: float | None
    passed_weight: int
    applicable_weight: int
    checks: Mapping[str, int]

    def to_json(self) -> dict[str, JSON]:
        return {
            "area": self.area,
            "score": self.score,
            "passed_weight": self.passed_weight,
            "applicable_weight": self.applicable_weight,
            "checks": dict(self.checks),
        }


@dataclass(frozen=True)
class Scores:
    overall: float | None
    grade: str
    areas: tuple[AreaScore, ...]
    check_status: Mapping[str, Status]
    judged: int
    catalog: int

    @property
    def coverage(self) -> float:
        return round(100.0 * self.judged / self.catalog, 1) if self.catalog else 0.0

    def to_json(self) -> dict[str, JSON]:
        return {
            "overall": self.overall,
            "grade": self.grade,
            "weights": {s.label: w for s, w in WEIGHTS.items()},
            "areas": [a.to_json() for a in self.areas],
            "checks": {k: v.value for k, v in sorted(self.check_status.items())},
            "coverage": {"judged": self.judged, "catalog": self.catalog, "percent": self.coverage},
        }


def check_statuses(results: Iterable[Result]) -> dict[str, Status]:
    grouped: dict[str, list[Status]] = defaultdict(list)
    for result in results:
        grouped[result.check_id].append(result.status)
    return {check_id: rollup(statuses) for check_id, statuses in grouped.items()}


def score(
    results: Iterable[Result],
    metas: Mapping[str, CheckMeta],
    severities: Mapping[str, Severity],
    catalog_size: int,
) -> Scores:
    """Score a run. `metas` and `severities` cover every check that produced results."""
    statuses = check_statuses(results)
    by_area: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "applicable": 0})
    area_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    critical_failed = False
    for check_id, status in statuses.items():
        meta = metas[check_id]
        severity = severities.get(check_id, meta.severity)
        area_counts[meta.area][status.value] += 1
        if status is Status.SKIP:
            continue
        weight = WEIGHTS[severity]
        by_area[meta.area]["applicable"] += weight
        by_area["__all__"]["applicable"] += weight
        if status in PASSED:
            by_area[meta.area]["passed"] += weight
            by_area["__all__"]["passed"] += weight
        elif severity is Severity.CRITICAL:
            critical_failed = True
    areas = tuple(
        AreaScore(
            area,
            _ratio(by_area[area]["passed"], by_area[area]["applicable"]),
            by_area[area]["passed"],
            by_area[area]["applicable"],
            dict(sorted(area_counts[area].items())),
        )
        for area in sorted(area_counts)
    )
    overall = _ratio(by_area["__all__"]["passed"], by_area["__all__"]["applicable"])
    judged = sum(1 for s in statuses.values() if s is not Status.SKIP)
    return Scores(overall, grade(overall, critical_failed), areas, statuses, judged, catalog_size)


def _ratio(passed: int, applicable: int) -> float | None:
    return round(100.0 * passed / applicable, 1) if applicable else None


def grade(overall: float | None, critical_failed: bool) -> str:
    if overall is None:
        return "N/A"
    if critical_failed:
        return "F"
    for floor, letter in GRADES:
        if overall >= floor:
            return letter
    return "F"
