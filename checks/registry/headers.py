"""registry.headers: Registry sends X-Content-Type-Options: nosniff.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, raw, subject


@check(
    id="registry.headers",
    title="Registry sends X-Content-Type-Options: nosniff",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: http.headers",
    rationale="Without nosniff a browser may render an uploaded blob as HTML or script.",
    passes_when="http.headers sets X-Content-Type-Options: [nosniff]",
    remediation="Add http.headers: {X-Content-Type-Options: [nosniff]} to config.yml.",
    generator="registry-config",
)
def headers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, configured = raw(facts["config"], "http.headers")
    values: list[str] = []
    if present and isinstance(configured, dict):
        for name, value in configured.items():
            if str(name).lower() == "x-content-type-options":
                values = [str(v) for v in (value if isinstance(value, list) else [value])]
    if any(v.strip().lower() == "nosniff" for v in values):
        yield passed(subject(facts), "X-Content-Type-Options: nosniff is configured", observed=values)
    else:
        yield failed(subject(facts), "http.headers does not set X-Content-Type-Options: nosniff",
                     observed=configured if present else "http.headers absent",
                     expected={"X-Content-Type-Options": ["nosniff"]})
