"""Console output: a progress display while probes run, then results grouped by area.

Colours and live progress on a TTY; plain text otherwise (CI logs, pipes).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from auditor.checkapi import ProbeRecord
from auditor.model import Result, Status
from auditor.report import AuditReport
from auditor.safetext import visible

STATUS_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.ERROR: "bold magenta",
    Status.SKIP: "dim",
    Status.WAIVED: "cyan",
}


def make_console(stream: TextIO | None = None) -> Console:
    stream = stream or sys.stdout
    tty = stream.isatty()
    return Console(file=stream, force_terminal=tty, no_color=not tty, highlight=False, soft_wrap=not tty)


@contextmanager
def probe_progress(console: Console, total: int) -> Iterator[object]:
    """Yield a progress callback `(name, record) -> None` (a live bar on a TTY, silent otherwise)."""
    if not console.is_terminal:
        yield lambda name, record: None
        return
    progress = Progress(
        SpinnerColumn(), TextColumn("gathering evidence"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("[dim]{task.description}"), TimeElapsedColumn(), console=console, transient=True,
    )
    with progress:
        task = progress.add_task("", total=total)

        def advance(name: str, record: ProbeRecord) -> None:
            progress.update(task, advance=1, description=f"{name}: {record.state}")

        yield advance


def print_report(console: Console, report: AuditReport, verbose: bool = False) -> None:
    """Results grouped by area: every non-pass result, passes collapsed unless verbose."""
    by_area: dict[str, list[Result]] = defaultdict(list)
    for result in report.results:
        by_area[report.checks[result.check_id].area].append(result)
    area_scores = {a.area: a.score for a in report.scores.areas}
    if not console.is_terminal:
        _print_plain(console, report, by_area, area_scores, verbose)
        return
    for area in sorted(by_area):
        score = area_scores.get(area)
        console.print(Text(f"\n{area}  ({'n/a' if score is None else f'{score:.0f}%'})", style="bold"))
        table = Table(show_header=False, box=None, pad_edge=False, expand=False)
        table.add_column("status", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("check", no_wrap=True)
        table.add_column("subject / message")
        for result in by_area[area]:
            if result.status is Status.PASS and not verbose:
                continue
            table.add_row(
                Text(result.status.value.upper(), style=STATUS_STYLE[result.status]),
                result.severity.label,
                result.check_id,
                Text(visible(f"{result.subject}: {result.message}" if result.subject != "-" else result.message)),
            )
        passes = sum(1 for r in by_area[area] if r.status is Status.PASS)
        if passes and not verbose:
            table.add_row(Text("PASS", style="green"), "", f"{passes} result(s)", "")
        console.print(table)
    _print_summary(console, report)


def _print_plain(
    console: Console,
    report: AuditReport,
    by_area: dict[str, list[Result]],
    area_scores: dict[str, float | None],
    verbose: bool,
) -> None:
    """One line per result, no wrapping: for CI logs and pipes."""
    for area in sorted(by_area):
        score = area_scores.get(area)
        console.print(f"\n[{area}] {'n/a' if score is None else f'{score:.0f}%'}", markup=False)
        for result in by_area[area]:
            if result.status is Status.PASS and not verbose:
                continue
            where = f"{visible(result.subject)}: " if result.subject != "-" else ""
            console.print(
                f"{result.status.value.upper():<6} {result.severity.label:<8} "
                f"{result.check_id}  {where}{visible(result.message)}",
                markup=False, soft_wrap=True,
            )
        passes = sum(1 for r in by_area[area] if r.status is Status.PASS)
        if passes and not verbose:
            console.print(f"PASS   ({passes} result(s))", markup=False)
    _print_summary(console, report)


def _print_compliance(console: Console, report: AuditReport) -> None:
    """One block per --compliance framework: every control with its status (plain lines)."""
    for view in report.compliance:
        counts = "  ".join(f"{k} {v}" for k, v in view["counts"].items() if v)
        console.print(f"\n[compliance] {view['title']} ({view['version']}): {counts}", markup=False)
        for control in view["controls"]:
            checks = ", ".join(f"{c['id']} {c['status']}" for c in control["checks"]) or "no automated check"
            console.print(f"{control['status'].upper():<14} {control['id']:<8} {control['title']}  [{checks}]",
                          markup=False, soft_wrap=True)


def _print_summary(console: Console, report: AuditReport) -> None:
    _print_compliance(console, report)
    counts = report.counts()
    overall = report.scores.overall
    console.print(
        Text(
            f"\nscore {'n/a' if overall is None else f'{overall:.1f}'} grade {report.scores.grade}  "
            f"coverage {report.scores.judged}/{report.scores.catalog} checks  "
            + "  ".join(f"{k} {v}" for k, v in counts.items() if v)
            + f"  exit {report.exit_code} (fail-on {report.fail_on.label})",
            style="bold",
        )
    )
