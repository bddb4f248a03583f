"""Markdown summary for merge-request comments."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from auditor.report import AuditReport
from auditor.reportapi import ReportWriter
from auditor.safetext import visible

from ._common import findings, target_label

if TYPE_CHECKING:
    import jinja2


def _md(text: object) -> str:
    """Escape a value for a Markdown table cell."""
    flat = str(text).replace("\r\n", " ").replace("\n", " ")
    return visible(flat).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("`", "\\`")


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # loaded when a report of this format is written

    env = jinja2.Environment(loader=jinja2.PackageLoader("auditor.reports", "templates"), autoescape=False,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = _md
    return env


def render_markdown(report: AuditReport) -> bytes:
    template = _environment().get_template("summary.md.j2")
    overall = report.scores.overall
    text = template.render(
        grade=report.scores.grade, score="n/a" if overall is None else f"{overall:.1f}",
        target=_md(target_label(report)), profile=report.profile.get("name"), fail_on=report.fail_on.label,
        exit_code=report.exit_code, judged=report.scores.judged, catalog=report.scores.catalog,
        judged_at=report.judged_at, counts=report.counts(), findings=findings(report),
        waivers=report.waivers, areas=report.scores.areas, compliance=[dict(v) for v in report.compliance],
    )
    return text.encode("utf-8")


MARKDOWN_WRITER = ReportWriter("markdown", "md", "Markdown summary for merge-request comments", render_markdown)
