"""registry.config-valid: Registry configuration parses and validates.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, warned
from auditor.model import Severity, Vantage

from ._config import NEEDS, PROBE, PURGE_KEYS, REFS_CONFIG, purging_section, subject


def _schema() -> dict[str, Any]:
    text = resources.files("auditor.checks.registry").joinpath("config.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


SCHEMA = _schema()


@check(
    id="registry.config-valid",
    title="Registry configuration parses and validates",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration",
    rationale="A config the registry misreads runs with defaults you did not choose, or panics at start; "
    "an unknown key is usually a typo that silently disables a hardening setting.",
    passes_when="the config parses as YAML and validates against distribution 2.8's configuration schema; "
    "unknown keys are reported as warn",
    remediation="Fix the reported keys; compare with docs/configuration.md of distribution 2.8.",
    generator="registry-config",
    references=REFS_CONFIG,
)
def config_valid(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    where = subject(facts)
    if "config" not in facts:
        yield failed(where, f"config does not parse: {facts.get('parse_error')}",
                     observed={"parse_error": facts.get("parse_error")}, expected="valid YAML mapping")
        return
    config = facts["config"]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    unknown: list[str] = []
    invalid: list[str] = []
    for err in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            unknown += [f"{path}.{k}" if path else k for k in extra]
        else:
            invalid.append(f"{path or '(top level)'}: {err.message}")
    section = purging_section(config)
    if section is not None and section.get("enabled") is not False:
        missing = [k for k in PURGE_KEYS if k not in section]
        if missing:
            invalid.append(
                "storage.maintenance.uploadpurging: missing " + ", ".join(missing)
                + " (the registry panics at start when the section is present but incomplete)"
            )
    if invalid:
        yield failed(where, f"{len(invalid)} invalid setting(s): " + "; ".join(invalid),
                     observed={"invalid": invalid, "unknown_keys": unknown}, expected="no schema violations")
    elif unknown:
        yield warned(where, "unknown keys (ignored by the registry; typos?): " + ", ".join(unknown),
                     observed={"unknown_keys": unknown}, expected="only keys the registry knows")
    else:
        yield passed(where, "config parses and validates against the distribution 2.8 schema")
