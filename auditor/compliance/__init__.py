"""Compliance frameworks as data: control ids mapped to check ids, and per-control status.

Each `<id>.yaml` beside this module is one framework (its source, version and controls; see
docs/compliance.md). A check's `controls` are derived from these files, so check modules carry no
compliance prose. `evaluate(framework, report)` turns an audit's results into per-control statuses:

- `manual`: the control has no automated check (a person judges it; the file says how);
- `fail` / `error` / `warn`: one of its checks failed / could not decide / warned;
- `incomplete`: the rest passed but some of its checks were not judged in this run (not selected,
  or their vantage was not requested);
- `waived`: the rest passed and some of its failures are covered by a waiver;
- `not-applicable`: every one of its checks was skipped as not applicable to this deployment;
- `pass`: every applicable check passed (skipped-as-not-applicable checks are left out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from auditor.errors import UsageError
from auditor.model import JSON, Status, Vantage, rollup
from auditor.target import Target

if TYPE_CHECKING:
    from auditor.report import AuditReport

CONTROL_STATUSES = ("fail", "error", "warn", "incomplete", "waived", "pass", "not-applicable", "manual")

FRAMEWORK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "title", "publisher", "version", "source", "controls"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]*$"},
        "title": {"type": "string", "minLength": 1},
        "publisher": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "source": {"type": "string", "pattern": "^https://"},
        "scope": {"type": "string"},
        "controls": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "title", "checks"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "title": {"type": "string", "minLength": 1},
                    "checks": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                    "manual": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Control:
    """One control (requirement) of a framework and the checks that cover it."""

    id: str
    title: str
    checks: tuple[str, ...]
    manual: str = ""


@dataclass(frozen=True)
class Framework:
    """A compliance framework file: where it comes from and its controls."""

    id: str
    title: str
    publisher: str
    version: str
    source: str
    scope: str
    controls: tuple[Control, ...]

    def describe(self) -> dict[str, JSON]:
        return {"id": self.id, "title": self.title, "publisher": self.publisher, "version": self.version,
                "source": self.source, "scope": self.scope}


@cache
def _validator() -> Any:
    """One validator for every framework file (jsonschema.validate re-checks the schema each call)."""
    import jsonschema  # loaded when a framework is read

    return jsonschema.Draft202012Validator(FRAMEWORK_SCHEMA)


def _parse(name: str, text: str, *, schema: bool = False) -> Framework:
    """The framework in `text`. The shipped files are checked against FRAMEWORK_SCHEMA by the test suite
    (tests/unit/test_compliance.py), not on every run (jsonschema's import is a start-up cost)."""
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 20x faster
    if schema:
        import jsonschema

        error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            raise UsageError(f"compliance framework {name}: at {where}: {error.message}")
    if data["id"] + ".yaml" != name:
        raise UsageError(f"compliance framework {name}: id {data['id']!r} does not match the file name")
    ids = [c["id"] for c in data["controls"]]
    if len(ids) != len(set(ids)):
        raise UsageError(f"compliance framework {name}: duplicate control ids")
    controls = tuple(Control(c["id"], c["title"], tuple(c["checks"]), c.get("manual", "")) for c in data["controls"])
    return Framework(data["id"], data["title"], data["publisher"], data["version"], data["source"],
                     data.get("scope", ""), controls)


@cache
def load_frameworks() -> dict[str, Framework]:
    """Every built-in framework by id (the YAML files of this package)."""
    found: dict[str, Framework] = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            framework = _parse(entry.name, entry.read_text(encoding="utf-8"))
            found[framework.id] = framework
    return found


def get_framework(framework_id: str) -> Framework:
    """The framework `framework_id`; UsageError naming the known ones otherwise."""
    frameworks = load_frameworks()
    if framework_id not in frameworks:
        raise UsageError(f"unknown compliance framework {framework_id!r} (known: {', '.join(frameworks)})")
    return frameworks[framework_id]


@cache
def controls_by_check() -> dict[str, tuple[dict[str, str], ...]]:
    """For each check id, the controls it covers: [{framework, control, title}] (derived from the data)."""
    out: dict[str, list[dict[str, str]]] = {}
    for framework in load_frameworks().values():
        for control in framework.controls:
            for check_id in control.checks:
                out.setdefault(check_id, []).append(
                    {"framework": framework.id, "control": control.id, "title": control.title})
    return {k: tuple(v) for k, v in out.items()}


def controls_for(check_id: str) -> list[dict[str, str]]:
    return [dict(c) for c in controls_by_check().get(check_id, ())]


def unknown_check_ids(known: Iterable[str]) -> dict[str, list[str]]:
    """Check ids that framework files name but no installed check has, per framework."""
    known_set = set(known)
    out: dict[str, list[str]] = {}
    for framework in load_frameworks().values():
        missing = sorted({c for control in framework.controls for c in control.checks if c not in known_set})
        if missing:
            out[framework.id] = missing
    return out


def _check_status(check_id: str, report: AuditReport, vantages: frozenset[Vantage]) -> str:
    """The status of one mapped check in this report: a Status value, or `not-run`."""
    meta = report.checks.get(check_id)
    if meta is None or meta.vantage not in vantages:
        return "not-run"
    statuses = [r.status for r in report.results if r.check_id == check_id]
    return rollup(statuses).value if statuses else "not-run"


def _control_status(statuses: list[str]) -> str:
    if not statuses:
        return "manual"
    for status in ("fail", "error", "warn"):
        if status in statuses:
            return status
    if "not-run" in statuses:
        return "incomplete"
    if Status.WAIVED.value in statuses:
        return "waived"
    if Status.PASS.value in statuses:
        return "pass"
    return "not-applicable"


def evaluate(framework: Framework, report: AuditReport) -> dict[str, JSON]:
    """The per-control view of `report` under `framework` (JSON-ready; see the module docstring)."""
    vantages = Target.from_description(report.target).vantages() if report.target else frozenset(Vantage)
    controls = []
    for control in framework.controls:
        checks = [{"id": c, "status": _check_status(c, report, vantages)} for c in control.checks]
        status = _control_status([c["status"] for c in checks])
        findings = sum(1 for r in report.results
                       if r.check_id in control.checks and r.status in (Status.FAIL, Status.ERROR, Status.WARN))
        controls.append({"id": control.id, "title": control.title, "status": status, "checks": checks,
                         "manual": control.manual, "findings": findings})
    counts = {s: sum(1 for c in controls if c["status"] == s) for s in CONTROL_STATUSES}
    return {**framework.describe(), "counts": counts, "controls": controls}


def attach(report: AuditReport, framework_ids: Iterable[str]) -> AuditReport:
    """The report with the per-control views of the named frameworks (UsageError for an unknown id)."""
    views = tuple(evaluate(get_framework(fid), report) for fid in dict.fromkeys(framework_ids))
    return dataclasses.replace(report, compliance=views) if views else report

