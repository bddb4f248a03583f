"""Prometheus exposition of the watcher's state (text format 0.0.4, through prometheus_client).

Families: regaudit_watch_tag_state{repository,tag,state} (1 per live tag),
regaudit_watch_tag_failing_since_seconds{repository,tag}, regaudit_watch_repository_tags{repository,state},
regaudit_watch_events_received_total{action}, regaudit_watch_events_duplicate_total,
regaudit_watch_events_applied_total, regaudit_watch_judgements_total,
regaudit_watch_judgement_lag_seconds (summary of receipt -> verdict), regaudit_watch_requests_rejected_total{reason},
regaudit_watch_last_reconciliation_timestamp_seconds, regaudit_watch_reconciliation_duration_seconds,
regaudit_watch_alerts{state}, regaudit_watch_queue_depth.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def render(snapshot: dict[str, Any]) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

    families: list[Any] = []
    state = GaugeMetricFamily("regaudit_watch_tag_state", "1 for the tag's current verdict state",
                              labels=["repository", "tag", "state"])
    since = GaugeMetricFamily("regaudit_watch_tag_failing_since_seconds",
                              "Unix time a failing tag turned failing", labels=["repository", "tag"])
    per_repo: Counter[tuple[str, str]] = Counter()
    for row in snapshot["tags"]:
        state.add_metric([row.repository, row.tag, row.state], 1)
        per_repo[(row.repository, row.state)] += 1
        if row.state in ("fail", "error"):
            since.add_metric([row.repository, row.tag], row.since)
    repos = GaugeMetricFamily("regaudit_watch_repository_tags", "tags per repository and state",
                              labels=["repository", "state"])
    for (repo, st), n in sorted(per_repo.items()):
        repos.add_metric([repo, st], n)
    families += [state, since, repos]
    received = CounterMetricFamily("regaudit_watch_events_received", "distinct registry events stored",
                                   labels=["action"])
    for action, n in sorted(snapshot["counts"]["events_by_action"].items()):
        received.add_metric([action], n)
    families.append(received)
    stats = snapshot["stats"]
    for name, doc, value in (
        ("regaudit_watch_events_duplicate", "deliveries of an event id already stored", stats["duplicates"]),
        ("regaudit_watch_events_applied", "events applied to tag state", stats["applied"]),
        ("regaudit_watch_judgements", "tag judgements made", stats["judgements"]),
    ):
        counter = CounterMetricFamily(name, doc)
        counter.add_metric([], value)
        families.append(counter)
    rejected = CounterMetricFamily("regaudit_watch_requests_rejected", "requests refused, by reason",
                                   labels=["reason"])
    for reason, n in sorted(stats["rejected"].items()):
        rejected.add_metric([reason], n)
    families.append(rejected)
    lags = stats["lags"]
    summary = SummaryMetricFamily("regaudit_watch_judgement_lag_seconds", "receipt of an event -> its tag's verdict")
    summary.add_metric([], count_value=stats["lag_count"], sum_value=stats["lag_sum"])
    families.append(summary)
    for name, doc, value in (
        ("regaudit_watch_judgement_lag_p99_seconds", "p99 of the last 1000 judgement lags", _quantile(lags, 0.99)),
        ("regaudit_watch_last_reconciliation_timestamp_seconds", "Unix time of the last reconciliation walk",
         snapshot["reconciliation"].get("at", 0)),
        ("regaudit_watch_reconciliation_duration_seconds", "duration of the last reconciliation walk",
         snapshot["reconciliation"].get("seconds", 0)),
        ("regaudit_watch_queue_depth", "events stored but not yet applied", snapshot["counts"]["unapplied"]),
    ):
        gauge = GaugeMetricFamily(name, doc)
        gauge.add_metric([], value)
        families.append(gauge)
    alerts = GaugeMetricFamily("regaudit_watch_alerts", "alert deliveries by state", labels=["state"])
    for st, n in sorted(snapshot["alerts"].items()):
        alerts.add_metric([st], n)
    families.append(alerts)

    class _Collector:
        def collect(self) -> Any:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
