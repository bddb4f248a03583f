"""Prometheus text format for node_exporter's textfile collector (scheduled runs, alerting)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from auditor.model import Severity, Status
from auditor.report import AuditReport
from auditor.reportapi import ReportWriter

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector


class _ReportCollector:
    """A prometheus_client collector (duck-typed: the library loads only when this format is written)."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        report = self.report
        base = {"target": str(report.target.get("url") or "local"), "profile": str(report.profile.get("name"))}
        labels = list(base)
        values = list(base.values())
        score = GaugeMetricFamily("regaudit_score", "Overall score (0-100) of the last audit", labels=labels)
        score.add_metric(values, report.scores.overall if report.scores.overall is not None else float("nan"))
        yield score
        areas = GaugeMetricFamily("regaudit_area_score", "Score (0-100) per area", labels=[*labels, "area"])
        for area in report.scores.areas:
            if area.score is not None:
                areas.add_metric([*values, area.area], area.score)
        yield areas
        status = GaugeMetricFamily("regaudit_check_status", "1 for the status each check ended in",
                                   labels=[*labels, "check", "area", "severity", "status"])
        for check_id, check_status in sorted(report.scores.check_status.items()):
            meta = report.checks[check_id]
            status.add_metric([*values, check_id, meta.area, report.severities[check_id].label, check_status.value], 1)
        yield status
        failing = Counter(r.severity for r in report.results if r.status in (Status.FAIL, Status.ERROR))
        by_severity = GaugeMetricFamily("regaudit_failing_results", "Results that failed or errored, by severity",
                                        labels=[*labels, "severity"])
        for severity in Severity:
            by_severity.add_metric([*values, severity.label], failing.get(severity, 0))
        yield by_severity
        started = dt.datetime.fromisoformat(report.started_at)
        ended = dt.datetime.fromisoformat(report.ended_at)
        last = GaugeMetricFamily("regaudit_last_run_timestamp_seconds", "When the last audit ended (Unix time)",
                                 labels=labels)
        last.add_metric(values, ended.timestamp())
        yield last
        duration = GaugeMetricFamily("regaudit_last_run_duration_seconds", "How long the last audit took",
                                     labels=labels)
        duration.add_metric(values, max(0.0, (ended - started).total_seconds()))
        yield duration
        if report.compliance:
            control = GaugeMetricFamily("regaudit_compliance_control_status",
                                        "1 for the status each compliance control ended in (--compliance)",
                                        labels=[*labels, "framework", "control", "status"])
            for view in report.compliance:
                for item in view["controls"]:
                    control.add_metric([*values, str(view["id"]), str(item["id"]), str(item["status"])], 1)
            yield control
        code = GaugeMetricFamily("regaudit_last_run_exit_code", "Exit code of the last audit", labels=labels)
        code.add_metric(values, report.exit_code)
        yield code


def render_prometheus(report: AuditReport) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(cast("Collector", _ReportCollector(report)))
    return generate_latest(registry)


PROMETHEUS_WRITER = ReportWriter("prometheus", "prom", "Prometheus textfile-collector metrics", render_prometheus)
