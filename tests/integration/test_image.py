"""The regaudit OCI image: built from Debian binaries and PyPI wheels with `docker import` on a real
Docker Engine started in the hardened lab's registry namespace, it runs the demo audit (outside and
content checks, the password from a mounted file) against the lab from a container and scores 100.
The root filesystem rebuilds bit for bit, and the image's CycloneDX SBOM validates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "image"


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo(lab_hardened, tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not (os.path.exists("/usr/sbin/dockerd") and os.path.exists("/usr/bin/docker") and shutil.which("nsenter")):
        pytest.skip("Debian's docker.io is not installed (scripts/setup.sh installs it)")
    out = tmp_path_factory.mktemp("image")
    proc = subprocess.run([sys.executable, str(SCRIPTS / "demo.py"), "--lab-json", str(lab_hardened.raw["state_file"]),
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _last_json(proc.stdout)


def test_the_image_runs_the_demo_audit_against_the_lab(demo: dict) -> None:
    assert demo["exit_code"] == 0
    assert demo["score"] == 100.0
    assert demo["counts"]["fail"] == 0 and demo["counts"]["error"] == 0 and demo["counts"]["pass"] > 50
    report = json.loads((Path(demo["reports"]) / "regaudit.json").read_text())
    assert report["target"]["url"] == "https://registry.regaudit.test"
    assert {c["status"] for c in report["compliance"][0]["controls"]} <= {"pass", "manual", "incomplete"}


def test_the_image_carries_oci_labels_and_a_valid_sbom(demo: dict) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    labels = demo["labels"]
    assert labels["org.opencontainers.image.title"] == "regaudit"
    assert labels["org.opencontainers.image.revision"] and labels["dev.regaudit.rootfs.sha256"] == demo["rootfs_sha256"]
    text = Path(demo["sbom"]).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None
    purls = {c["purl"].split("@")[0] for c in json.loads(text)["components"]}
    assert {"pkg:pypi/regaudit", "pkg:pypi/cryptography", "pkg:deb/debian/python3.11-minimal",
            "pkg:deb/debian/libssl3"} <= purls


def test_the_root_filesystem_rebuilds_bit_for_bit(demo: dict, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPTS / "build.py"), "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _last_json(proc.stdout)["rootfs_sha256"] == demo["rootfs_sha256"]
