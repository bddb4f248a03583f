"""The fleet report: one summary over every target's verdict, in five formats.

- `fleet.json`: the summary (schema: auditor/schemas/fleet.schema.json, format `regaudit-fleet/1`)
- `fleet.html`: a self-contained dashboard (no network fetches): every target's score, grade and
  trend, the worst findings across the fleet, a link to each target's own report
- `fleet.sarif`: SARIF 2.1.0, one run, the target in each result (`properties.target` and a
  logical location of kind `resource`)
- `fleet.junit.xml`: a test suite per target (an unreachable target is one erroring test case)
- `fleet.prom`: Prometheus textfile metrics with a `target` label

Each judged target's own report (JSON and HTML) is written under `targets/<name>/`.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from auditor import __version__
from auditor.atomicfile import write_atomically
from auditor.fleet.judge import TargetOutcome
from auditor.model import Severity, Status

FLEET_FORMAT = "regaudit-fleet/1"
WORST = 25
FAILING = (Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class FleetReport:
    outcomes: tuple[TargetOutcome, ...]
    trends: dict[str, list[dict[str, Any]]]
    generated_at: str
    exit_code: int

    def target_state(self, outcome: TargetOutcome) -> str:
        if outcome.state == "error":
            return "error"
        return "fail" if outcome.failing else "pass"

    def worst_findings(self, limit: int = WORST) -> list[dict[str, Any]]:
        """Failing and erroring checks across the fleet: highest severity, then most targets, first."""
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for outcome in self.outcomes:
            report = outcome.report
            if report is None:
                continue
            for result in report.results:
                if result.status not in FAILING:
                    continue
                key = (result.check_id, result.status.value, result.severity.label)
                row = found.setdefault(key, {
                    "check": result.check_id, "status": result.status.value, "severity": result.severity.label,
                    "rank": int(result.severity), "title": report.checks[result.check_id].title,
                    "targets": [], "subjects": 0, "example": result.message})
                if outcome.name not in row["targets"]:
                    row["targets"].append(outcome.name)
                row["subjects"] += 1
        rows = sorted(found.values(), key=lambda r: (-r["rank"], -len(r["targets"]), r["check"], r["status"]))
        for row in rows:
            del row["rank"]
        return rows[:limit]

    def to_json(self) -> dict[str, Any]:
        targets = []
        for outcome in self.outcomes:
            report = outcome.report
            item: dict[str, Any] = {
                "name": outcome.name,
                "state": self.target_state(outcome),
                "reason": outcome.reason,
                "profile": outcome.profile,
                "groups": list(outcome.groups),
                "evidence": list(outcome.evidence),
                "signature": outcome.signature,
                "score": None, "grade": None, "exit_code": None, "run_id": None, "url": None,
                "fail_on": None, "counts": None, "failing": [], "report": None,
                "trend": [{"judged_at": r["judged_at"], "score": r["score"], "grade": r["grade"]}
                          for r in self.trends.get(outcome.name, [])],
            }
            if report is not None:
                item.update({
                    "score": report.scores.overall, "grade": report.scores.grade, "exit_code": report.exit_code,
                    "run_id": report.run_id, "url": report.target.get("url"), "fail_on": report.fail_on.label,
                    "counts": report.counts(),
                    "failing": [{"check": r.check_id, "subject": r.subject, "status": r.status.value,
                                 "severity": r.severity.label, "message": r.message}
                                for r in report.results if r.status in FAILING],
                    "report": f"targets/{outcome.name}/regaudit.html",
                })
            targets.append(item)
        states = [t["state"] for t in targets]
        return {
            "format": FLEET_FORMAT,
            "tool": {"name": "regaudit", "version": __version__},
            "generated_at": self.generated_at,
            "exit_code": self.exit_code,
            "counts": {"targets": len(targets), "pass": states.count("pass"), "fail": states.count("fail"),
                       "error": states.count("error")},
            "targets": targets,
            "worst_findings": self.worst_findings(),
        }


def fleet_schema() -> dict[str, Any]:
    text = resources.files("auditor").joinpath("schemas/fleet.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("auditor", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _spark(trend: Sequence[dict[str, Any]]) -> str:
    """SVG polyline points (score 0-100 -> y 28..2) of a target's trend, oldest left."""
    scores = [t["score"] for t in trend if isinstance(t.get("score"), int | float)]
    if not scores:
        return ""
    step = 100 / max(len(scores) - 1, 1)
    return " ".join(f"{round(i * step, 1)},{round(28 - s * 0.26, 1)}" for i, s in enumerate(scores))


def render_html(fleet: FleetReport) -> bytes:
    data = fleet.to_json()
    for target in data["targets"]:
        target["spark"] = _spark(target["trend"])
    html = _environment().get_template("fleet.html.j2").render(fleet=data, severities=[
        s.label for s in sorted(Severity, reverse=True)])
    return html.encode("utf-8")


def render_sarif(fleet: FleetReport) -> bytes:
    from auditor.reports import sarif

    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for outcome in fleet.outcomes:
        report = outcome.report
        if report is None:
            results.append({
                "ruleId": "fleet.target-unjudged", "kind": "fail", "level": "error",
                "message": {"text": f"[{outcome.name}] could not be judged: {outcome.reason}"},
                "locations": [{"logicalLocations": [{"name": outcome.name, "kind": "resource"}]}],
                "properties": {"target": outcome.name, "status": "error"},
            })
            continue
        for result in report.results:
            if result.status not in (*FAILING, Status.WARN, Status.WAIVED):
                continue
            if result.check_id not in rules:
                rules[result.check_id] = sarif._rule(report, result.check_id)
            item = sarif._result(result, 0)
            item.pop("ruleIndex")
            item["message"]["text"] = f"[{outcome.name}] {item['message']['text']}"
            item["locations"] = [*item["locations"], {"logicalLocations": [{"name": outcome.name, "kind": "resource"}]}]
            item["properties"]["target"] = outcome.name
            results.append(item)
    rule_list = [rules[k] for k in sorted(rules)]
    rule_list.append({"id": "fleet.target-unjudged", "name": "fleet_target_unjudged",
                      "shortDescription": {"text": "A fleet target could not be judged (unreachable, no or "
                                           "untrusted evidence)"},
                      "defaultConfiguration": {"level": "error"}})
    index = {rule["id"]: i for i, rule in enumerate(rule_list)}
    for item in results:
        item["ruleIndex"] = index[item["ruleId"]]
    document = {
        "$schema": sarif.SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "regaudit", "version": __version__, "semanticVersion": __version__,
                                "informationUri": sarif.INFO_URI, "rules": rule_list}},
            "automationDetails": {"id": f"regaudit-fleet/{fleet.generated_at}"},
            "invocations": [{"executionSuccessful": True, "exitCode": fleet.exit_code}],
            "results": results,
            "properties": {"targets": [o.name for o in fleet.outcomes]},
        }],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def render_junit(fleet: FleetReport) -> bytes:
    root = ET.Element("testsuites", name="regaudit fleet")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for outcome in fleet.outcomes:
        suite = ET.SubElement(root, "testsuite", name=f"regaudit.{outcome.name}", timestamp=fleet.generated_at)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if outcome.report is None:
            case = ET.SubElement(suite, "testcase", name=f"{outcome.name}: judged", classname=outcome.name)
            ET.SubElement(case, "error", message=outcome.reason, type="unjudged").text = outcome.reason
            counts.update(tests=1, errors=1)
        else:
            ET.SubElement(ET.SubElement(suite, "properties"), "property", name="target", value=outcome.name)
            for result in outcome.report.results:
                name = result.check_id if result.subject == "-" else f"{result.check_id} [{result.subject}]"
                case = ET.SubElement(suite, "testcase", name=name, classname=f"{outcome.name}.{result.check_id}")
                counts["tests"] += 1
                text = f"{outcome.name}: {result.message}"
                if result.status is Status.FAIL:
                    ET.SubElement(case, "failure", message=text, type=result.severity.label).text = text
                    counts["failures"] += 1
                elif result.status is Status.ERROR:
                    ET.SubElement(case, "error", message=text, type=result.severity.label).text = text
                    counts["errors"] += 1
                elif result.status in (Status.SKIP, Status.WAIVED):
                    ET.SubElement(case, "skipped", message=text)
                    counts["skipped"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


class _FleetCollector(Collector):
    def __init__(self, fleet: FleetReport) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("regaudit_fleet_target_judged", "1 when the target was reached and judged",
                               labels=["target"])
        score = GaugeMetricFamily("regaudit_fleet_target_score", "Overall score (0-100) of the target",
                                  labels=["target", "profile", "grade"])
        failing = GaugeMetricFamily("regaudit_fleet_failing_results",
                                    "Failing or erroring results of the target, by severity",
                                    labels=["target", "severity"])
        code = GaugeMetricFamily("regaudit_fleet_target_exit_code",
                                 "The target's own gate (0 pass, 1 failing, 3 nothing gathered; -1 unjudged)",
                                 labels=["target"])
        for outcome in self.fleet.outcomes:
            report = outcome.report
            up.add_metric([outcome.name], 0 if report is None else 1)
            code.add_metric([outcome.name], -1 if report is None else report.exit_code)
            if report is None:
                continue
            overall = report.scores.overall
            score.add_metric([outcome.name, outcome.profile, report.scores.grade],
                             overall if overall is not None else float("nan"))
            for severity in Severity:
                failing.add_metric([outcome.name, severity.label], sum(
                    1 for r in report.results if r.status in FAILING and r.severity is severity))
        yield up
        yield score
        yield failing
        yield code
        gate = GaugeMetricFamily("regaudit_fleet_exit_code", "Exit code of the fleet run (0 every target passes)")
        gate.add_metric([], self.fleet.exit_code)
        yield gate


def render_prometheus(fleet: FleetReport) -> bytes:
    registry = CollectorRegistry()
    registry.register(_FleetCollector(fleet))
    return generate_latest(registry)


WRITERS = {
    "json": ("fleet.json", lambda f: (json.dumps(f.to_json(), indent=2) + "\n").encode("utf-8")),
    "html": ("fleet.html", render_html),
    "sarif": ("fleet.sarif", render_sarif),
    "junit": ("fleet.junit.xml", render_junit),
    "prometheus": ("fleet.prom", render_prometheus),
}


def write_fleet(fleet: FleetReport, formats: Sequence[str], out_dir: Path) -> list[Path]:
    written = []
    for name in formats:
        filename, render = WRITERS[name]
        path = out_dir / filename
        write_atomically(path, render(fleet))
        written.append(path)
    return written


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
