"""registry.readonly-off: Registry is not left in read-only mode.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, passed, warned
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, effective, subject


@check(
    id="registry.readonly-off",
    title="Registry is not left in read-only mode",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Garbage Collection: read-only mode",
    rationale="Read-only mode belongs around a garbage-collection run; left on, every push fails with 405.",
    passes_when="storage.maintenance.readonly is not enabled (warn when it is)",
    remediation="Set storage.maintenance.readonly.enabled: false after garbage collection and restart.",
    generator="registry-config",
)
def readonly_off(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    value = effective(facts["config"], "storage.maintenance.readonly.enabled")
    if value.value is True:
        yield warned(subject(facts), "read-only mode is enabled: pushes fail with 405", observed=value.describe(),
                     expected="storage.maintenance.readonly.enabled=false outside a GC run")
    else:
        yield passed(subject(facts), value.describe(), observed=value.describe())
