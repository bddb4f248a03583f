"""The lab's own self-test, per variant: every property and every seeded defect holds on the wire or
on disk (independently of regaudit), and the defects file is well-formed against the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lab import LabInfo, selftest

from auditor.plugins import load_checks

pytestmark = pytest.mark.integration

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
    catalog_ids = set(load_checks())  # the catalog is the checks' metadata
    for d in doc["defects"]:
        assert d["source"] in ("stack", "content"), d["id"]
        assert d["checks"], d["id"]
        assert d["verify"]["property"] in selftest.VERIFIERS, d["id"]
        assert set(d["checks"]) <= catalog_ids, (d["id"], set(d["checks"]) - catalog_ids)
        if d["source"] == "content":
            assert all(":" in s for s in d["subjects"]), d["id"]


# ---- hygiene, on a private scratch variant (own prefix and root), so shared labs are untouched
@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    import dataclasses

    import lab as lab_pkg
    from lab import variants

    if reason := lab_pkg.available():
        pytest.skip(reason)
    monkeypatch.setenv("REGAUDIT_LAB_ROOT", str(tmp_path / "labroot"))
    v = dataclasses.replace(variants.VARIANTS["hardened"], name="scratch", prefix="rgx-")
    monkeypatch.setitem(variants.VARIANTS, "scratch", v)
    yield "scratch"
    lab_pkg.down("scratch")


def _running(pid: int) -> bool:
    """A live process (a zombie awaiting its reaper is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _leftovers(info: LabInfo, pids: list[int]) -> list[str]:
    from lab import netns

    out = [ns for ns in netns.existing() if ns.startswith("rgx-")]
    out += [str(p) for p in Path("/etc/netns").glob("rgx-*")]
    out += [f"pid {p}" for p in pids if _running(p)]
    mounts = Path("/proc/self/mountinfo").read_text()
    out += [f"mount {info.base_dir}"] if str(info.base_dir) in mounts else []
    out += [str(info.base_dir)] if info.base_dir.exists() else []
    return out


def test_up_is_idempotent_and_down_leaves_nothing(scratch: str) -> None:
    import lab as lab_pkg

    first = lab_pkg.up(scratch, content=False)
    pids = [int(p["pid"]) for p in first["processes"]]
    # registry, nginx, Apache, and the OCSP responder Apache staples from (a copy of hardened)
    assert {p["name"] for p in first["processes"]} == {"registry", "nginx", "apache", "ocsp-responder"}
    assert len(pids) == 4 and lab_pkg.is_up(scratch)
    again = lab_pkg.up(scratch, content=False)
    assert [int(p["pid"]) for p in again["processes"]] == pids, "a healthy variant must be left running"
    lab_pkg.down(scratch)
    assert not _leftovers(first, pids)


def test_failed_start_leaves_nothing(scratch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import lab as lab_pkg
    from lab import lifecycle, render

    # A real failure: nginx refuses a config with an unknown directive, after the registry started.
    real_render = render.nginx_config
    monkeypatch.setattr(render, "nginx_config",
                        lambda *a, **k: real_render(*a, **k).replace("events {", "bogus_directive on;\nevents {"))
    registry_pids: list[int] = []
    real_spawn = lifecycle.procs.spawn

    def spawn(*a: object, **k: object) -> int:
        pid = real_spawn(*a, **k)  # type: ignore[arg-type]
        registry_pids.append(pid)
        return pid

    monkeypatch.setattr(lifecycle.procs, "spawn", spawn)
    with pytest.raises(lab_pkg.LabError, match="nginx"):
        lab_pkg.up(scratch, content=False)
    assert registry_pids, "the registry should have started before nginx failed"
    info = LabInfo({"base_dir": str(Path(lifecycle.lab_root()) / scratch)})
    assert not _leftovers(info, registry_pids)
