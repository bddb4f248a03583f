"""storage.reclaimable counts what `registry garbage-collect --dry-run` (the real distribution 2.8
binary, read-only) would delete: on a layout built in a tmp dir and on the weak lab's storage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from auditor.host import storage_layout

pytestmark = pytest.mark.integration

ELIGIBLE = re.compile(r"^blob eligible for deletion: (sha256:[0-9a-f]{64})$", re.MULTILINE)
SUMMARY = re.compile(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion")


def dry_run_gc(config: Path) -> tuple[set[str], int]:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.skip("docker-registry is not installed")
    proc = subprocess.run([binary, "garbage-collect", "--dry-run", str(config)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    summary = SUMMARY.search(text)
    assert summary, text[-2000:]
    return set(ELIGIBLE.findall(text)), int(summary.group(2))


def unreferenced(root: str) -> tuple[set[str], int]:
    blobs: dict[str, Any] = storage_layout.scan(root)["blobs"]
    return {b["digest"] for b in blobs["unreferenced"]}, int(blobs["unreferenced_count"])


def test_agrees_with_gc_on_a_built_layout(tmp_path: Path) -> None:
    from unit.test_host_storage import Layout

    lay = Layout(tmp_path / "storage")
    web, _ = lay.image("app/web", [100, 3000], "web")
    lay.tag("app/web", "v1", web)
    arm, arm_size = lay.image("multi", [5000], "arm")
    amd, amd_size = lay.image("multi", [7000, 10], "amd")
    lay.tag("multi", "latest", lay.index("multi", [(arm, arm_size, "arm64"), (amd, amd_size, "amd64")]))
    lay.blob(b"o" * 9000)
    gone, _ = lay.image("app/web", [4000], "deleted")
    os.remove(lay.v2 / "repositories/app/web/_manifests/revisions/sha256" / gone.split(":")[1] / "link")
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {lay.root}\n")
    ours, count = unreferenced(str(lay.root))
    theirs, eligible = dry_run_gc(config)
    assert count == eligible == 4
    assert ours == theirs


def test_agrees_with_gc_on_the_weak_lab(lab_weak: Any) -> None:
    root = lab_weak["registry"]["storage_root"]
    ours, count = unreferenced(root)
    theirs, eligible = dry_run_gc(Path(lab_weak["registry"]["config"]))
    assert count == eligible
    if count <= storage_layout.MAX_LISTED:
        assert ours == theirs
