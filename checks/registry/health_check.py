"""registry.health-check: Storage driver health check is enabled.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.judge.units import parse_duration
from auditor.model import Severity, Vantage

from ._config import PROBE, config_facts, effective, subject
from ._live import HEALTH, live_health


@check(
    id="registry.health-check",
    title="Storage driver health check is enabled",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(PROBE, HEALTH),
    guide="Registry Configuration: health",
    rationale="With the storage health check the registry answers 503 when its storage fails instead of "
    "serving errors, and monitoring sees it.",
    passes_when="health.storagedriver enabled, interval <= 10s, threshold <= 3; /debug/health on the debug "
    "server, where reachable, answers 200 (healthy)",
    remediation="Set health.storagedriver {enabled: true, interval: 10s, threshold: 3}.",
    generator="registry-config",
    params={"max_interval_seconds": 10, "max_threshold": 3},
)
def health_check(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    enabled = effective(config, "health.storagedriver.enabled")
    interval = effective(config, "health.storagedriver.interval")
    threshold = effective(config, "health.storagedriver.threshold")
    observed = {"enabled": enabled.describe(), "interval": interval.describe(), "threshold": threshold.describe()}
    expected = {"enabled": True, "interval": f"<= {params['max_interval_seconds']}s",
                "threshold": f"<= {params['max_threshold']}"}
    problems = []
    if enabled.value is not True:
        problems.append("storage driver health check is not enabled")
    else:
        seconds = parse_duration(interval.value)
        if seconds is None or seconds > float(params["max_interval_seconds"]):
            problems.append(f"interval {interval.value!r} is not <= {params['max_interval_seconds']}s")
        if not isinstance(threshold.value, int) or threshold.value > int(params["max_threshold"]):
            problems.append(f"threshold {threshold.value!r} is not <= {params['max_threshold']}")
    live_problem, note, observed["live"] = live_health(ev)
    if live_problem:
        problems.append(live_problem)
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed, expected=expected)
    else:
        yield passed(subject(facts), "storage driver health check configured" + note, observed=observed,
                     expected=expected)
