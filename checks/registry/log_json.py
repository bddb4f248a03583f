"""registry.log-json: Registry logs JSON at a non-debug level.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, effective, raw, subject


@check(
    id="registry.log-json",
    title="Registry logs JSON at a non-debug level",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: log",
    rationale="JSON logs feed a SIEM without fragile parsing; debug logs leak request details.",
    passes_when="log.formatter is json and log.level is not debug",
    remediation="Set log.formatter: json and log.level: info in config.yml.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
)
def log_json(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    formatter = effective(config, "log.formatter")
    level = effective(config, "log.level")
    present, legacy = raw(config, "loglevel")
    if level.default and present:
        level = level.__class__("loglevel", legacy, False)
    observed = {"formatter": formatter.describe(), "level": level.describe()}
    problems = []
    if formatter.value != "json":
        problems.append(f"formatter is {formatter.value!r}")
    if str(level.value).lower() == "debug":
        problems.append("level is debug")
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed,
                     expected={"formatter": "json", "level": "info, warn or error"})
    else:
        yield passed(subject(facts), f"{formatter.describe()}, {level.describe()}", observed=observed)
