"""The gather-only zipapp on a host without regaudit: built by the project, run by a bare python3.

It runs in a namespace of its own (rgs-) on a lightweight registry host's files, with `-I -S`
(neither the project's site-packages nor the system's are importable: proven below), and with
Python 3.9 when this machine has one. Its evidence must judge exactly as the installed CLI's
`regaudit audit --inside` evidence of the same host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lab.fleet import FleetLab, find_python39, light_host

pytestmark = pytest.mark.integration

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("zipapp")
    lab = FleetLab(base / "lab")
    try:
        ns = lab.namespace(f"zip{os.getpid()}")
        paths = light_host(base / "host", "zipapp")
        archive = base / "regaudit-gather.pyz"
        built = subprocess.run([sys.executable, "-m", "auditor.fleet.build_zipapp", "-o", str(archive), "--manifest"],
                               capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr
        yield {"base": base, "ns": ns, "paths": paths, "archive": archive, "manifest": json.loads(built.stdout)}
    finally:
        lab.close()


def _flags(paths: dict[str, str]) -> list[str]:
    return [a for key, value in sorted(paths.items()) for a in (f"--{key.replace('_', '-')}", value)]


def _in_ns(ns: str, argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=300,
                          env=env)


def _judge(evidence: Path, out: Path) -> set[tuple[str, str, str]]:
    proc = subprocess.run(["regaudit", "evaluate", str(evidence), "--format", "json", "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads((out / "regaudit.json").read_text())
    return {(r["check"], r["subject"], r["status"]) for r in report["results"]}


def test_the_archive_holds_only_inside_gathering(host) -> None:
    names = zipfile.ZipFile(host["archive"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"__main__.py", "auditor", "yaml", "crossplane"}, tops
    forbidden = ("auditor/checks/", "auditor/reports/", "auditor/remediation/", "auditor/commands/",
                 "auditor/signing.py", "auditor/runner.py", "auditor/httpclient.py", "auditor/content/walker.py")
    assert not [n for n in names if n.startswith(forbidden)]
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
    assert host["manifest"]["packages"] == ["crossplane", "yaml"]
    assert zipfile.ZipFile(host["archive"]).read("auditor/fleet/_manifest.json")


def test_no_regaudit_nor_site_packages_are_importable_in_the_run_environment(host) -> None:
    for module in ("auditor", "yaml", "httpx", "cryptography"):
        proc = _in_ns(host["ns"], [SYSTEM_PYTHON, "-I", "-S", "-c", f"import {module}"])
        assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr, module


def test_zipapp_evidence_judges_as_the_installed_cli(host) -> None:
    base, ns, paths = host["base"], host["ns"], host["paths"]
    zipped = _in_ns(ns, [SYSTEM_PYTHON, "-I", "-S", str(host["archive"]), "--out", str(base / "zip.json"),
                         *_flags(paths)])
    assert zipped.returncode == 0, zipped.stderr
    env = {**os.environ, "REGAUDIT_STATE_DIR": str(base / "state")}
    cli = _in_ns(ns, ["regaudit", "audit", "--inside", *_flags(paths), "--no-progress", "--no-history",
                      "--format", "json", "--output", str(base / "cli"), "--evidence-out", str(base / "cli.json")], env)
    assert cli.returncode in (0, 1) and "Traceback" not in cli.stderr, cli.stderr
    zip_verdicts = _judge(base / "zip.json", base / "judged-zip")
    assert zip_verdicts == _judge(base / "cli.json", base / "judged-cli")
    assert ("registry.log-json", str(paths["registry_config"]), "pass") in zip_verdicts
    evidence = json.loads((base / "zip.json").read_text())
    assert evidence["probes"]["registry.content"]["state"] == "ok"
    assert evidence["probes"]["registry.content"]["value"]["repositories"]
    assert oct((base / "zip.json").stat().st_mode & 0o777) == "0o600"


def test_zipapp_runs_on_python_39(host) -> None:
    py39 = find_python39()
    if py39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine (the -I -S runs above use the system python3)")
    base = host["base"]
    proc = _in_ns(host["ns"], [py39, "-I", "-S", str(host["archive"]), "--out", str(base / "zip39.json"),
                               *_flags(host["paths"])])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((base / "zip39.json").read_text())["gathered_by"]["python"].startswith("3.9.")
    assert _judge(base / "zip39.json", base / "judged-39") == _judge(base / "zip.json", base / "judged-zip-again")


@pytest.mark.parametrize("argv, message", [
    (["--active"], "read-only"),
    (["--remediate"], "read-only"),
    (["--rescan-stale"], "read-only"),
    ([], "--out FILE is required"),
    (["--out", "/tmp/x.json", "--registry-config", "/nonexistent/config.yml"], "no such file"),
    (["--out", "/tmp/x.json", "--deadline", "0"], "--deadline must be positive"),
    (["--out", "/tmp/x.json", "--bogus"], "unrecognized arguments"),
])
def test_bad_usage_is_one_line_and_exit_2(host, argv: list[str], message: str) -> None:
    proc = subprocess.run([SYSTEM_PYTHON, "-I", "-S", str(host["archive"]), *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 or "usage:" in proc.stderr
