"""lab.content against a real Debian docker-registry (distribution 2.8) on loopback.

Populates the `weak` profile through the registry API, then checks on the wire (independently
of the populate code's own bookkeeping where it matters) that every tag is where content.json
says, that hardened tags pass all six content facts and each seeded tag breaks exactly one,
and that a second populate converges to the same tags and digests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from lab.content import labconf, plan  # noqa: E402
from lab.content.verify import verify  # noqa: E402

pytestmark = pytest.mark.integration
REGISTRY = shutil.which("docker-registry")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if REGISTRY is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    base = tmp_path_factory.mktemp("content-lab")
    port = _free_port()
    (base / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {base / 'storage'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    log = (base / "registry.log").open("w")
    proc = subprocess.Popen([REGISTRY, "serve", str(base / "config.yml")], stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        lab_json = base / "lab.json"
        lab_json.write_text(json.dumps({
            "variant": "weak", "base_dir": str(base), "hostname": "registry.regaudit.test",
            "registry": {"listen": [f"127.0.0.1:{port}"]}, "scan_dir": str(base / "scans"),
            "content_profile": "weak"}))
        env = {**os.environ, "PYTHONPATH": str(TESTS)}
        run = subprocess.run([sys.executable, "-m", "lab.content", "populate", str(lab_json)], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        yield {"url": url, "lab_json": lab_json, "env": env,
               "content": json.loads((base / "content.json").read_text())}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_every_planned_tag_is_in_the_registry(lab: dict[str, Any]) -> None:
    expected: dict[str, set[str]] = {}
    for spec in plan.plan("weak"):
        expected.setdefault(spec.repo, set()).add(spec.tag)
    catalog = httpx.get(f"{lab['url']}/v2/_catalog").json()["repositories"]
    assert sorted(catalog) == sorted(expected)
    accept = "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json," \
             "application/vnd.docker.distribution.manifest.v2+json"
    for repo, tags in expected.items():
        listed = set(httpx.get(f"{lab['url']}/v2/{repo}/tags/list").json()["tags"])
        artifacts = set(lab["content"]["artifact_tags"].get(repo, []))
        assert listed == tags | artifacts
        for tag in tags:
            resp = httpx.get(f"{lab['url']}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
            assert resp.headers["docker-content-digest"] == lab["content"]["repositories"][repo]["tags"][tag]["digest"]


def test_index_and_large_layer(lab: dict[str, Any]) -> None:
    rec = lab["content"]["repositories"]["base/alpine"]["tags"]["3.20"]
    assert rec["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(c["platform"] for c in rec["children"]) == ["linux/amd64", "linux/arm64/v8"]
    assert lab["content"]["largest_layer"]["repo"] == "tools/ml-model"
    assert lab["content"]["largest_layer"]["size"] > 150 * 1024 * 1024
    uploads = lab["content"]["blob_uploads"]
    assert uploads.get("chunked", 0) >= 1 and uploads.get("monolithic", 0) >= 1   # both upload kinds


def test_seeded_defects_hold_and_nothing_else(lab: dict[str, Any]) -> None:
    result = verify(labconf.load(lab["lab_json"]))
    assert result["ok"], {k: v for k, v in result["tags"].items() if not v["consistent"]}
    broken = {ref: facts["expected_failure"] for ref, facts in result["tags"].items() if facts["expected_failure"]}
    assert broken == {s.ref: s.defect for s in plan.WEAK_EXTRA}
    for ref, facts in result["tags"].items():
        if not facts["expected_failure"]:
            assert facts["signature_valid"] and facts["scan_fresh"] and facts["scan_digest_match"], ref
            assert facts["scan_clean"], ref


def test_populate_again_converges(lab: dict[str, Any]) -> None:
    run = subprocess.run([sys.executable, "-m", "lab.content", "populate", str(lab["lab_json"])], env=lab["env"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    again = json.loads((lab["lab_json"].parent / "content.json").read_text())
    digests = {(r, t): v["digest"] for r, b in again["repositories"].items() for t, v in b["tags"].items()}
    before = {(r, t): v["digest"] for r, b in lab["content"]["repositories"].items() for t, v in b["tags"].items()}
    assert digests == before
    assert verify(labconf.load(lab["lab_json"]))["ok"]
