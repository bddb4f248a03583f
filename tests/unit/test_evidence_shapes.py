"""Typed evidence: each probe declares its value's shape; the shipped schemas and docs/evidence.md are
derived from it; audits and `evaluate` check values against it (exit 2 naming probe and field)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.checkapi import ProbeRecord
from auditor.evidence_schema import fit_to_shape, mismatch, schema_for, value_mismatch
from auditor.judge.shapes import SHAPES
from auditor.plugins import load_probes

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
LAB_FILES = sorted(FIXTURES.glob("lab-*/*.json"))
RECORDED = [*LAB_FILES, *sorted((FIXTURES / "host").glob("lab-*-evidence.json"))]


def regaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, timeout=120)


def recorded_values() -> list[tuple[str, str, Any]]:
    out = []
    for path in RECORDED:
        for name, record in json.loads(path.read_text())["probes"].items():
            if record.get("state") == "ok":
                out.append((path.name, name, record["value"]))
    return out


def test_committed_schemas_and_docs_are_generated_from_the_shapes() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "evidence_schemas.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_built_in_probe_declares_its_shape() -> None:
    probes = load_probes()
    builtin = {n: p for n, p in probes.items() if p.fn.__module__.startswith("auditor.probes.")}
    assert set(builtin) == set(SHAPES)
    for name, item in builtin.items():
        assert item.shape is SHAPES[name], name
        assert schema_for(name) is not None, name


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shipped_schema_is_valid_json_schema(name: str) -> None:
    schema = schema_for(name)
    assert schema is not None
    jsonschema.Draft202012Validator.check_schema(schema)


def test_recorded_evidence_fits_and_jsonschema_agrees() -> None:
    values = recorded_values()
    assert len(values) > 30
    for source, name, value in values:
        schema = schema_for(name)
        assert schema is not None, name
        assert mismatch(value, schema) is None, (source, name)
        jsonschema.Draft202012Validator(schema).validate(value)


def _nginx_value() -> dict[str, Any]:
    probes = json.loads((FIXTURES / "lab-weak" / "inside.json").read_text())["probes"]
    return copy.deepcopy(probes["config.nginx"]["value"])


@pytest.mark.parametrize(("path", "bad", "field"), [
    (["registry_servers"], "not a list", "registry_servers"),
    (["registry_servers", 0, "listen", 0, "port"], "443", "registry_servers[0].listen[0].port"),
    (["running"], "yes", "running"),
    (["build"], ["a list"], "build"),
])
def test_a_value_of_another_shape_is_named_by_field(path: list[Any], bad: Any, field: str) -> None:
    value = _nginx_value()
    holder: Any = value
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = bad
    schema = schema_for("config.nginx")
    assert schema is not None
    found = value_mismatch("config.nginx", value)
    assert found is not None and found.startswith(f"{field}: expected "), found
    assert not jsonschema.Draft202012Validator(schema).is_valid(value)  # the library agrees


def test_an_audit_turns_a_value_of_another_shape_into_an_error_record() -> None:
    value = _nginx_value()
    value["http_block"] = "yes"
    record = fit_to_shape(ProbeRecord("config.nginx", "ok", value, "", 0.5))
    assert record.state == "error" and record.value is None
    assert "http_block: expected boolean or null, found string" in record.reason
    good = ProbeRecord("config.nginx", "ok", _nginx_value(), "", 0.5)
    assert fit_to_shape(good) is good


def test_evaluate_exits_2_naming_probe_and_field(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "lab-weak" / "inside.json").read_text())
    data["probes"]["registry.content"]["value"]["tags"][0]["digest"] = {"sha256": "x"}
    broken = tmp_path / "inside.json"
    broken.write_text(json.dumps(data))
    proc = regaudit("evaluate", str(broken), "--format", "json", "--output", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "probe registry.content: field tags[0].digest: expected string or null, found object" in proc.stderr
    assert "regaudit-evidence/1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_evaluate_of_another_version_exits_2_naming_the_version(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "lab-weak" / "inside.json").read_text())
    data["format"] = "regaudit-evidence/2"
    other = tmp_path / "inside.json"
    other.write_text(json.dumps(data))
    proc = regaudit("evaluate", str(other), "--format", "json", "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "regaudit-evidence/1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("lab", ["lab-weak", "lab-hardened"])
def test_evidence_saved_before_typed_evidence_rejudges_identically(tmp_path: Path, lab: str) -> None:
    """The recorded lab files load through the shape check and judge as the raw records do."""
    from auditor.checkapi import ProbeRecord as Record
    from auditor.evidence import EvidenceFile, merge_evidence
    from auditor.plugins import load_checks
    from auditor.profile import load_profile
    from auditor.runner import RunOptions, Selection, evaluate

    files = [FIXTURES / lab / "outside.json", FIXTURES / lab / "inside.json"]
    checked = merge_evidence([EvidenceFile.load(p) for p in files])
    raw_records: dict[str, Record] = {}
    for path in files:  # the records as written, without the loader's shape check
        for name, rec in json.loads(path.read_text())["probes"].items():
            if name not in raw_records or (raw_records[name].state != "ok" and rec["state"] == "ok"):
                raw_records[name] = Record.from_json(name, rec)
    raw = EvidenceFile(checked.target, checked.started_at, checked.ended_at, checked.judged_at, raw_records,
                       checked.discovery)
    checks = load_checks()
    selection = Selection(load_profile("seed-hardened"))
    ours = evaluate(checks, checked, selection, RunOptions())
    theirs = evaluate(checks, raw, selection, RunOptions())
    assert [r.to_json() for r in ours.results] == [r.to_json() for r in theirs.results]
    assert ours.exit_code == theirs.exit_code


def test_remediation_validates_a_registry_config_through_the_engine(tmp_path: Path) -> None:
    """validate_registry runs the config.registry probe and registry.config-valid (no hand-made record)."""
    from auditor.remediation.procs import StepError
    from auditor.remediation.validate import validate_registry

    good = tmp_path / "good.yml"
    good.write_text("version: 0.1\nstorage:\n  filesystem: {rootdirectory: /var/lib/registry}\n"
                    "http:\n  addr: 127.0.0.1:5000\n")
    validate_registry(str(good))
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 0.1\nstorage:\n  filesystem: {rootdirectory: 5}\nhttp: [1]\n")
    with pytest.raises(StepError, match=r"is invalid: .*http: \[1\] is not of type 'object'"):
        validate_registry(str(bad))


def test_shapes_import_on_the_gather_zipapps_python_3_9() -> None:
    """Probes import the shapes, and the gather-only zipapp runs them on Python 3.9: no `A | B` may be
    evaluated at import."""
    import shutil

    python39 = next((str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.9*/bin/python3.9"))),
                    None) or shutil.which("python3.9")
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('shapes', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(len(m.SHAPES))")
    proc = subprocess.run([python39, "-c", code, str(ROOT / "auditor" / "judge" / "shapes.py")],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "pyenv" in proc.stderr:
        pytest.skip(f"python3.9 is not runnable here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) == len(SHAPES)
