"""HTML report: one self-contained file (inline CSS and JS, no network fetches), printable."""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cache
from typing import TYPE_CHECKING, Any

from auditor.model import Result, Severity, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

from ._common import target_label

STATUS_ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.WAIVED, Status.PASS, Status.SKIP]

if TYPE_CHECKING:
    import jinja2


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # loaded when a report of this format is written

    return jinja2.Environment(loader=jinja2.PackageLoader("auditor.reports", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def _trend(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Polyline points for the score trend (oldest left); scores are 0-100 mapped to y 110..10."""
    step = 40
    width = max(step * max(len(history) - 1, 1) + 20, 200)
    dots = []
    for i, run in enumerate(history):
        score = run.get("score")
        y = 110 - (float(score) if isinstance(score, int | float) else 0.0)
        dots.append({"x": 10 + i * step, "y": round(y, 1), "label": f"{run.get('judged_at')}: {score}"})
    return {"width": width, "dots": dots, "points": " ".join(f"{d['x']},{d['y']}" for d in dots)}


def render_html(report: AuditReport) -> bytes:
    grouped: dict[str, list[Result]] = defaultdict(list)
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    for result in sorted(report.results, key=lambda r: (order[r.status], -int(r.severity), r.check_id, r.subject)):
        grouped[report.checks[result.check_id].area].append(result)
    history = [dict(h) for h in report.history]
    overall = report.scores.overall
    html = _environment().get_template("report.html.j2").render(
        grade=report.scores.grade,
        grade_class=report.scores.grade.replace("/", ""),
        score="n/a" if overall is None else f"{overall:.1f}",
        target=target_label(report),
        target_json=json.dumps(dict(report.target), indent=2),
        profile=report.profile,
        fail_on=report.fail_on.label,
        exit_code=report.exit_code,
        judged=report.scores.judged,
        catalog=report.scores.catalog,
        judged_at=report.judged_at,
        started_at=report.started_at,
        ended_at=report.ended_at,
        tool_version=report.tool_version,
        run_id=report.run_id or "-",
        areas=report.scores.areas,
        counts=report.counts(),
        statuses=[s.value for s in STATUS_ORDER],
        severities=[s.label for s in sorted(Severity, reverse=True)],
        grouped=sorted(grouped.items()),
        checks=report.checks,
        waivers=report.waivers,
        history=history,
        trend=_trend(history),
        discovery=dict(report.discovery),
        probes=sorted(report.probes.items()),
        compliance=[dict(view) for view in report.compliance],
    )
    return html.encode("utf-8")


HTML_WRITER = ReportWriter("html", "html", "self-contained HTML report for reviewers", render_html)
