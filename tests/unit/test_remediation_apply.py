"""apply / rollback on real files (no services): backups, atomic writes, the journal, crash recovery,
a full disk (a real small tmpfs), a failing re-audit. The lab tests do the same with real services."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from auditor.errors import UsageError
from auditor.model import Result, Severity, Status
from auditor.remediation import apply as remediation
from auditor.remediation.fsops import replace_atomically
from auditor.remediation.journal import Journal
from auditor.remediation.model import FileChange, MoveAside, Plan
from auditor.remediation.watchdog import revert_if_due

ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("REGAUDIT_STATE_DIR", str(state))
    monkeypatch.delenv("REGAUDIT_REMEDIATE_FAULT", raising=False)
    return state


def snapshot(paths: list[Path]) -> dict[str, tuple[str, int, int, int]]:
    out = {}
    for path in paths:
        st = path.stat()
        out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    return out


def site_files(tmp_path: Path) -> tuple[Plan, list[Path], Path]:
    live = tmp_path / "live"
    live.mkdir()
    a, b, key = live / "a.conf", live / "b.conf", live / "server.key"
    a.write_text("a original\n")
    b.write_text("b original\n")
    key.write_text("KEY\n")
    b.chmod(0o640)
    key.chmod(0o644)
    upload = live / "uploads" / "0b1c"
    upload.mkdir(parents=True)
    (upload / "data").write_bytes(b"x" * 100)
    plan = Plan(files=[FileChange(str(a), "g", ("x.a",), content=b"a new\n"),
                       FileChange(str(b), "g", ("x.b",), content=b"b new\n"),
                       FileChange(str(key), "g", ("x.key",), mode=0o600)],
                moves=[MoveAside(str(upload), "g", ("x.up",))], expected={"x.a"})
    return plan, [a, b, key, upload / "data"], upload


def fill(path: Path) -> None:
    """Write zeros until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)


def passing(ids: set[str]) -> list[Result]:
    return [Result(c, Status.PASS, Severity.HIGH, "-", "ok") for c in ids]


def failing(ids: set[str]) -> list[Result]:
    return [Result(c, Status.FAIL, Severity.HIGH, "-", "still broken") for c in ids]


def test_apply_then_rollback_restores_every_byte_mode_and_directory(tmp_path: Path) -> None:
    plan, paths, upload = site_files(tmp_path)
    before = snapshot(paths)
    said: list[str] = []
    assert remediation.apply(plan, passing, said.append) == 0
    assert paths[0].read_bytes() == b"a new\n" and paths[1].read_bytes() == b"b new\n"
    assert paths[1].stat().st_mode & 0o777 == 0o640  # the live file's mode is kept by the atomic write
    assert paths[2].stat().st_mode & 0o777 == 0o600 and not upload.exists()
    journal = Journal.load()
    assert journal is not None and journal.status == "applied"
    manifest = Path(journal.backup_dir) / "manifest.json"
    assert manifest.exists() and oct(manifest.stat().st_mode & 0o777) == "0o600"
    assert remediation.rollback_last(said.append) == 0
    assert snapshot(paths) == before
    assert Journal.load().status == "rolled_back"  # type: ignore[union-attr]
    assert remediation.rollback_last(said.append) == 0 and "already rolled back" in said[-1]


def test_a_check_still_failing_after_apply_rolls_everything_back(tmp_path: Path) -> None:
    plan, paths, _ = site_files(tmp_path)
    before = snapshot(paths)
    said: list[str] = []
    assert remediation.apply(plan, failing, said.append) == 1
    assert snapshot(paths) == before
    assert any("re-audit: 1 result(s) still failing: x.a fail" in line for line in said)
    assert Journal.load().status == "rolled_back"  # type: ignore[union-attr]


def test_nothing_to_do_changes_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    assert remediation.apply(Plan(), passing, said.append) == 0
    assert said == ["nothing to do: no change is needed on this host"]
    assert Journal.load() is None


CRASHER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from auditor.model import Result, Severity, Status
    from auditor.remediation import apply as remediation
    from auditor.remediation.model import FileChange, MoveAside, Plan
    live = Path(sys.argv[1])
    plan = Plan(files=[FileChange(str(live / "a.conf"), "g", ("x.a",), content=b"a new\\n"),
                       FileChange(str(live / "b.conf"), "g", ("x.b",), content=b"b new\\n"),
                       FileChange(str(live / "server.key"), "g", ("x.key",), mode=0o600)],
                moves=[MoveAside(str(live / "uploads" / "0b1c"), "g", ("x.up",))], expected={"x.a"})
    remediation.apply(plan, lambda ids: [Result(c, Status.PASS, Severity.HIGH, "-", "ok") for c in ids], print)
""")


def test_killed_between_two_writes_then_rollback(tmp_path: Path) -> None:
    _, paths, _ = site_files(tmp_path)
    before = snapshot(paths)
    env = {**os.environ, "REGAUDIT_REMEDIATE_FAULT": "kill-after-write:1"}
    cp = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path / "live")], env=env, capture_output=True,
                        text=True, timeout=60, check=False)
    assert cp.returncode == -9, cp.stderr
    assert paths[0].read_bytes() == b"a new\n" and paths[1].read_bytes() == b"b original\n"  # killed halfway
    journal = Journal.load()
    assert journal is not None and journal.status == "running"
    with pytest.raises(UsageError, match="unfinished remediation"):
        remediation.apply(Plan(files=[FileChange(str(paths[0]), "g", (), content=b"z")]), passing, print)
    assert remediation.rollback_last(print) == 0
    assert snapshot(paths) == before


@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs needs root")
def test_full_disk_leaves_every_original_byte_identical(tmp_path: Path) -> None:
    plan, paths, _ = site_files(tmp_path)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        full = small / "site.conf"
        full.write_text("on the full disk\n")
        fill(small / "filler")
        plan.files.insert(1, FileChange(str(full), "g", ("x.full",), content=b"new content " * 2000))
        paths.append(full)
        before = snapshot(paths)
        said: list[str] = []
        assert remediation.apply(plan, passing, said.append) == 1
        assert snapshot(paths) == before
        assert sorted(p.name for p in small.iterdir()) == ["filler", "site.conf"]  # no temp file left behind
        assert any("No space left on device" in line for line in said)
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs needs root")
def test_full_state_disk_fails_before_any_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, paths, _ = site_files(tmp_path)
    before = snapshot(paths)
    state = tmp_path / "fullstate"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,nr_inodes=4", "tmpfs", str(state)], check=True)
    try:
        monkeypatch.setenv("REGAUDIT_STATE_DIR", str(state))
        fill(state / "filler")
        said: list[str] = []
        assert remediation.apply(plan, passing, said.append) == 1
        assert snapshot(paths) == before
    finally:
        subprocess.run(["umount", str(state)], check=False)


@pytest.mark.skipif(not ROOT, reason="changing a file's owner needs root")
def test_atomic_replace_keeps_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.write_text("old")
    path.chmod(0o640)
    os.chown(path, 1000, 33)
    replace_atomically(path, b"new")
    st = path.stat()
    assert (path.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid) == (b"new", 0o640, 1000, 33)


def test_confirm_needs_a_firewall_change() -> None:
    with pytest.raises(UsageError, match="no firewall change"):
        remediation.confirm(print)


def test_watchdog_waits_for_the_deadline_and_stops_when_confirmed(tmp_path: Path) -> None:
    journal = Journal.create()
    journal.status = "applied"
    journal.firewall = {"deadline": 1000.0, "confirmed": False, "reverted": False}
    journal.save()
    assert revert_if_due(journal, now=999.0) is False
    journal.firewall["confirmed"] = True
    assert revert_if_due(journal, now=2000.0) is True
    assert journal.firewall["reverted"] is False  # confirmed: nothing reverted


def test_cli_rollback_without_a_journal_and_apply_from_evidence_are_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, "REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    cp = subprocess.run(["regaudit", "remediate", "--rollback"], env=env, capture_output=True, text=True,
                        timeout=60, check=False)
    assert cp.returncode == 2 and "nothing to roll back" in cp.stderr
    cp = subprocess.run(["regaudit", "remediate", "--apply", "--evidence=x.json"], env=env, capture_output=True,
                        text=True, timeout=60, check=False)
    assert cp.returncode == 2 and "--evidence is for --plan" in cp.stderr
    cp = subprocess.run(["regaudit", "remediate", "--confirm"], env=env, capture_output=True, text=True,
                        timeout=60, check=False)
    assert cp.returncode == 2 and "no firewall change" in cp.stderr
