"""`--rescan-stale` on the hardened lab, through the TLS proxy with the lab's credentials.

Trivy cannot be installed on this machine (no Debian, PyPI or npm package ships it), so the run
with a scanner uses tests/fixtures/trivy-standin/trivy, which writes a real upstream Trivy report
re-targeted at the reference it is given; the run without one proves the audit says so.
The lab's own scan directory is copied, never changed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from auditor.content.scans import scan_filename

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "trivy-standin"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _scan_copy(lab: Any, tmp: Path) -> tuple[Path, str, str]:
    """A copy of the lab's scan dir with one report made 10 days old and another removed."""
    scans = tmp / "scans"
    shutil.copytree(lab.raw["scan_dir"], scans)
    content = json.loads((lab.base_dir / "content.json").read_text())
    subjects = sorted((repo, tag) for repo, r in content["repositories"].items() for tag in r["tags"])
    (old_repo, old_tag), (gone_repo, gone_tag) = subjects[0], subjects[1]
    stale = scans / scan_filename(old_repo, old_tag)
    doc = json.loads(stale.read_text())
    doc["CreatedAt"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat().replace("+00:00", "Z")
    stale.write_text(json.dumps(doc))
    (scans / scan_filename(gone_repo, gone_tag)).unlink()
    return scans, f"{old_repo}:{old_tag}", f"{gone_repo}:{gone_tag}"


def _audit(lab: Any, scans: Path, out: Path, path: str, extra: list[str]) -> tuple[subprocess.CompletedProcess[str],
                                                                                 dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "TRIVY_"))}
    env.update(PATH=path, REGAUDIT_USERNAME=lab.username,
               REGAUDIT_PASSWORD=Path(lab.password_file).read_text().strip(),
               TRIVY_STANDIN_LOG=str(out / "trivy.log"))
    cmd = ["ip", "netns", "exec", lab.namespaces["ci"], sys.executable, "-m", "auditor.cli", "audit", lab.url,
           "--ca-bundle", str(lab.ca), "--cosign-key", lab.raw["cosign"]["public_key"], "--scan-dir", str(scans),
           "--select", "scans", "--no-progress", "--no-history", "--format", "json", "--output", str(out),
           "--rescan-stale", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert (out / "regaudit.json").exists(), proc.stderr[-2000:]
    return proc, json.loads((out / "regaudit.json").read_text())


def _status(report: dict[str, Any], check: str, subject: str) -> tuple[str, str]:
    [result] = [r for r in report["results"] if r["check"] == check and r["subject"] == subject]
    return result["status"], result["message"]


def test_rescan_without_trivy_says_so_and_judges_what_it_found(lab_hardened: Any, tmp_path: Path) -> None:
    scans, stale, missing = _scan_copy(lab_hardened, tmp_path)
    proc, report = _audit(lab_hardened, scans, tmp_path, SYSTEM_PATH, [])
    assert "--rescan-stale: trivy is not installed (not on PATH)" in proc.stderr
    status, message = _status(report, "scans.fresh", stale)
    assert status == "fail" and "--rescan-stale could not run: trivy is not installed" in message
    assert _status(report, "scans.present", missing)[0] == "fail"
    assert proc.returncode == 1
    assert not (scans / scan_filename(*missing.split(":"))).exists()


def test_rescan_runs_trivy_for_stale_and_missing_reports_only(lab_hardened: Any, tmp_path: Path) -> None:
    scans, stale, missing = _scan_copy(lab_hardened, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in scans.glob("*.json")}
    proc, report = _audit(lab_hardened, scans, tmp_path, f"{STANDIN}:{SYSTEM_PATH}", [])
    assert "--rescan-stale: 2 tag(s) rescanned" in proc.stderr, proc.stderr[-2000:]
    for check in ("scans.present", "scans.fresh", "scans.digest-match"):
        assert {r["status"] for r in report["results"] if r["check"] == check} == {"pass"}, check
    calls = [json.loads(line) for line in (tmp_path / "trivy.log").read_text().splitlines()]
    password = Path(lab_hardened.password_file).read_text().strip()
    refs = sorted(call["argv"][-1] for call in calls)
    digests = {s: json.loads((scans / scan_filename(*s.split(":"))).read_text())["ArtifactName"]
               for s in (stale, missing)}
    assert refs == sorted(digests.values())
    for subject, ref in digests.items():
        assert ref.startswith(f"registry.regaudit.test/{subject.split(':')[0]}@sha256:")
    for call in calls:
        assert password not in " ".join(call["argv"])
        assert call["username"] == lab_hardened.username and call["password_set"]
        assert call["ssl_cert_file"] == str(lab_hardened.ca)
    after = {p.name: p.stat().st_mtime_ns for p in scans.glob("*.json")}
    untouched = set(before) - {scan_filename(*stale.split(":"))}
    assert all(after[name] == before[name] for name in untouched)
    assert not list(scans.glob(".regaudit-rescan-*"))
    assert password not in (tmp_path / "regaudit.json").read_text()


def test_rescan_needs_a_scan_dir_and_trivy_needs_rescan(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "auditor.cli", "audit", "https://registry.example", "--no-progress"]
    for extra, fragment in ((["--rescan-stale"], "--rescan-stale writes reports into --scan-dir"),
                            (["--trivy", "/bin/true"], "--trivy is only used with --rescan-stale")):
        proc = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
