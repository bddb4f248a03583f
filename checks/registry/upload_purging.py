"""registry.upload-purging: Incomplete uploads are purged (judged on the effective config `config.registry` records)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.judge.units import parse_duration
from auditor.model import Severity, Vantage

from ._config import NEEDS, PURGE_KEYS, config_facts, effective, purging_section, subject


@check(
    id="registry.upload-purging",
    title="Incomplete uploads are purged",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: storage.maintenance.uploadpurging",
    rationale="Abandoned uploads fill the disk and can hold data that was never meant to be stored.",
    passes_when="upload purging is in effect: enabled, age <= 168h, interval <= 24h, dryrun false",
    remediation="Set storage.maintenance.uploadpurging {enabled: true, age: 168h, interval: 24h, dryrun: false}.",
    generator="registry-config",
    params={"max_age_hours": 168, "max_interval_hours": 24},
)
def upload_purging(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    section = purging_section(config)
    if section is None:
        values = {k: effective(config, f"storage.maintenance.uploadpurging.{k}") for k in ("enabled", *PURGE_KEYS)}
    else:
        values = {
            k: effective(config, f"storage.maintenance.uploadpurging.{k}") if k == "enabled" and k not in section
            else _section_value(section, k)
            for k in ("enabled", *PURGE_KEYS)
        }
    observed = {k: v.describe() for k, v in values.items()}
    max_age = float(params["max_age_hours"]) * 3600
    max_interval = float(params["max_interval_hours"]) * 3600
    problems = []
    if values["enabled"].value is not True:
        problems.append("purging is disabled")
    else:
        age = parse_duration(values["age"].value)
        interval = parse_duration(values["interval"].value)
        if values["age"].value is None or age is None:
            problems.append("age is missing or not a duration")
        elif age > max_age:
            problems.append(f"age {values['age'].value} exceeds {params['max_age_hours']}h")
        if values["interval"].value is None or interval is None:
            problems.append("interval is missing or not a duration")
        elif interval > max_interval:
            problems.append(f"interval {values['interval'].value} exceeds {params['max_interval_hours']}h")
        if values["dryrun"].value is not False:
            problems.append("dryrun is not false (nothing is deleted)" if values["dryrun"].value is not None
                            else "dryrun is missing (the registry panics at start)")
    expected = {"enabled": True, "age": f"<= {params['max_age_hours']}h",
                "interval": f"<= {params['max_interval_hours']}h", "dryrun": False}
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed, expected=expected)
    else:
        rests = [v.key for v in values.values() if v.default]
        note = f" (rests on registry defaults for: {', '.join(rests)})" if rests else ""
        yield passed(subject(facts), "upload purging in effect" + note, observed=observed, expected=expected)


def _section_value(section: dict[str, Any], key: str) -> Any:
    from ._config import Value

    return Value(f"storage.maintenance.uploadpurging.{key}", section.get(key), False)
