"""registry.delete-enabled: Registry allows deletes (garbage collection needs them).

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, effective, subject


@check(
    id="registry.delete-enabled",
    title="Registry allows deletes (garbage collection needs them)",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: storage.delete",
    rationale="Without delete, vulnerable or leaked images cannot be removed and disk space never frees.",
    passes_when="storage.delete.enabled is true",
    remediation="Set storage.delete.enabled: true and restart the registry.",
    generator="registry-config",
)
def delete_enabled(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    value = effective(facts["config"], "storage.delete.enabled")
    if value.value is True:
        yield passed(subject(facts), value.describe(), observed=value.describe())
    else:
        yield failed(subject(facts), f"deletes are disabled: {value.describe()}", observed=value.describe(),
                     expected="storage.delete.enabled=true")
