"""auth.token-service fails when the token service hands push scope to anonymous users.

The shared token lab must stay sound for everyone else, so this test starts its OWN pair in the
token lab's registry namespace: the lab's token service (lab.content token-service) with
`anonymous_push: true` on :8444, and a real docker-registry (its own storage, TLS with the lab's
server certificate) on :5443 whose auth.token realm is that service. Both are stopped by PID.
Its storage shows what the active probe did (one upload session, which the lab's token service
gives nobody the `delete` action to cancel: the probe must report that).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile.run import audit
from lab import LabInfo

from auditor.model import Status

pytestmark = pytest.mark.integration

TOKEN_PORT = 8444
REGISTRY_PORT = 5443
TESTS_DIR = Path(__file__).resolve().parents[1]


def _wait_https(info: LabInfo, url: str, timeout: float = 20.0) -> None:
    ns = info.namespaces["ci"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "--max-time", "2", "--cacert", str(info.ca), url],
                              capture_output=True, text=True, check=False)
        if proc.stdout.strip() not in ("", "000"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def push_stack(lab_token: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("anonpush")
    raw = json.loads(lab_token.state_file.read_text())
    acl = yaml.safe_load(Path(raw["token"]["acl"]).read_text())
    acl["anonymous_push"] = True
    (d / "acl.yaml").write_text(yaml.safe_dump(acl))
    raw["token"] = {**raw["token"], "listen": f"[::]:{TOKEN_PORT}", "port": TOKEN_PORT,
                    "acl": str(d / "acl.yaml"), "log": str(d / "token.log")}
    (d / "lab.json").write_text(json.dumps(raw))
    config = yaml.safe_load(Path(raw["registry"]["config"]).read_text())
    config["storage"]["filesystem"]["rootdirectory"] = str(d / "storage")
    config["http"]["addr"] = f":{REGISTRY_PORT}"
    config["http"]["host"] = f"https://{lab_token.hostname}:{REGISTRY_PORT}"
    config["http"]["tls"] = {"certificate": raw["tls"]["cert"], "key": raw["tls"]["key"]}
    config["http"].pop("debug", None)
    config["auth"]["token"]["realm"] = f"https://{raw['token']['host']}:{TOKEN_PORT}/token"
    (d / "config.yml").write_text(yaml.safe_dump(config))
    ns = lab_token.namespaces["registry"]
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    logs = (d / "token.out").open("wb"), (d / "registry.out").open("wb")
    token = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-m", "lab.content", "token-service",
                              str(d / "lab.json")], stdout=logs[0], stderr=subprocess.STDOUT, env=env)
    registry = subprocess.Popen(["ip", "netns", "exec", ns, "docker-registry", "serve", str(d / "config.yml")],
                                stdout=logs[1], stderr=subprocess.STDOUT)
    try:
        _wait_https(lab_token, f"https://{raw['token']['host']}:{TOKEN_PORT}/token")
        _wait_https(lab_token, f"https://{lab_token.hostname}:{REGISTRY_PORT}/v2/")
        yield {"url": f"https://{lab_token.hostname}:{REGISTRY_PORT}", "storage": d / "storage", "dir": d}
    finally:
        _stop(registry)
        _stop(token)
        for fh in logs:
            fh.close()


def _uploads(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("_uploads/*") if p.is_dir()] if storage.exists() else []


def _audit(info: LabInfo, url: str, tmp: Path, *extra: str) -> Any:
    env = {"REGAUDIT_USERNAME": info.username, "REGAUDIT_PASSWORD": info.password_file.read_text().strip()}
    run = audit(url, tmp, "--ca-bundle", str(info.ca), "--select", "auth.token-service,auth.anonymous-denied",
                "--deadline", "60", *extra, env=env, netns=info.namespaces["ci"], timeout=120)
    assert not run.killed and run.report_text, run.stderr[-3000:]
    assert env["REGAUDIT_PASSWORD"] not in run.report_text + run.evidence_text + run.stdout + run.stderr
    return run


def test_anonymous_push_fails_passively(lab_token: LabInfo, push_stack: dict[str, Any], tmp_path: Path) -> None:
    run = _audit(lab_token, push_stack["url"], tmp_path)
    assert run.status("auth.anonymous-denied") is Status.PASS
    assert run.status("auth.token-service") is Status.FAIL
    anon = next(r for r in run.results("auth.token-service") if r["subject"] == "anonymous token")
    assert anon["status"] == "fail" and "push" in anon["message"] and "--active" in anon["message"]
    assert _uploads(push_stack["storage"]) == []


def test_anonymous_push_fails_actively_and_reports_its_cleanup(lab_token: LabInfo, push_stack: dict[str, Any],
                                                               tmp_path: Path) -> None:
    run = _audit(lab_token, push_stack["url"], tmp_path, "--active")
    by_subject = {r["subject"]: r for r in run.results("auth.token-service")}
    anon = by_subject["anonymous token"]
    assert anon["status"] == "fail" and "started an upload (202)" in anon["message"]
    assert by_subject["pull-only token"]["status"] == "pass"  # the registry still enforces the pull scope
    assert by_subject["token realm"]["status"] == "pass" and by_subject["bad credentials"]["status"] == "pass"
    repo = push_stack["storage"] / "docker/registry/v2/repositories/regaudit-probe/upload-check"
    assert repo.exists(), "no upload reached the registry: the active probe did not run"
    # distribution authorises DELETE with the `delete` action; the lab's token service grants
    # anonymous users pull+push only and its users no delete, so the session cannot be cancelled
    # through the API: the probe must have tried every way and must say so.
    cleanup = anon["observed"]["upload_attempt"]["cleanup"]
    assert [a["with"] for a in cleanup["attempts"]] == [
        "the token that started it", "anonymous delete-scope token", "the given credentials delete-scope token"]
    assert all(a.get("status") == 401 for a in cleanup["attempts"])
    assert "NOT cancelled" in anon["message"] and "delete action" in anon["message"]
    assert len(_uploads(push_stack["storage"])) == 1
