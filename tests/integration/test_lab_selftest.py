"""The lab's own self-test, per variant: every property and every seeded defect holds on the wire or
on disk (independently of regaudit), and the defects file is well-formed against the catalog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from lab import LabInfo, selftest

pytestmark = pytest.mark.integration

CATALOG = Path("/work/shared/CATALOG.md")
DEFECTS = Path(__file__).resolve().parents[1] / "lab" / "defects" / "weak.yaml"


def _assert_selftest(info: LabInfo) -> selftest.Report:
    report = selftest.run(info)
    assert report.results, "self-test ran nothing"
    skipped = [r.name for r in report.results if r.skipped]
    assert not skipped, f"not verified (content missing?): {skipped}"
    assert report.ok, report.render()
    return report


def test_hardened_selftest(lab_hardened: LabInfo) -> None:
    report = _assert_selftest(lab_hardened)
    assert not any(r.defect for r in report.results)


def test_token_selftest(lab_token: LabInfo) -> None:
    _assert_selftest(lab_token)


def test_firewall_selftest(lab_firewall: LabInfo) -> None:
    report = _assert_selftest(lab_firewall)
    assert any(r.name == "firewall-matrix" and r.ok for r in report.results)


def test_weak_selftest_verifies_every_defect(lab_weak: LabInfo) -> None:
    report = _assert_selftest(lab_weak)
    doc = yaml.safe_load(DEFECTS.read_text())
    ids = {d["id"] for d in doc["defects"]}
    verified = {r.defect for r in report.results if r.defect and r.ok}
    assert verified == ids


def test_weak_defects_file_is_well_formed() -> None:
    doc = yaml.safe_load(DEFECTS.read_text())
    assert doc["variant"] == "weak"
    ids = [d["id"] for d in doc["defects"]]
    assert len(ids) == len(set(ids)), "duplicate defect ids"
    catalog_ids = set(re.findall(r"^\| ([a-z]+\.[a-z0-9-]+) \|", CATALOG.read_text(), re.M)) \
        if CATALOG.exists() else set()
    for d in doc["defects"]:
        assert d["source"] in ("stack", "content"), d["id"]
        assert d["checks"], d["id"]
        assert d["verify"]["property"] in selftest.VERIFIERS, d["id"]
        if catalog_ids:
            assert set(d["checks"]) <= catalog_ids, (d["id"], set(d["checks"]) - catalog_ids)
        if d["source"] == "content":
            assert all(":" in s for s in d["subjects"]), d["id"]
