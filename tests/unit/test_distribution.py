"""The distribution files: the GitHub Action, the Kubernetes CronJob, the image build's pieces.

The image itself is built and run against the lab in tests/integration/test_image.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _build_module():
    spec = importlib.util.spec_from_file_location("image_build", REPO / "scripts" / "image" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_action_names_every_exit_code_and_takes_the_password_from_an_input() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert set(action["outputs"]) >= {"exit-code", "result", "report", "sarif"}
    described = action["outputs"]["exit-code"]["description"]
    for code, name in (("0", "passed"), ("1", "findings"), ("2", "usage error"), ("3", "could not audit")):
        assert f"{code} {name}" in described
    step = action["runs"]["steps"][0]
    script = step["run"]
    assert "${{" not in script  # inputs reach the script through env, never spliced into shell text
    assert step["env"]["REGAUDIT_PASSWORD_INPUT"] == "${{ inputs.password }}"
    assert "--password-file /run/secrets/registry-password" in script and "$REGAUDIT_PASSWORD_INPUT\" >" in script
    assert "passed ;; 1) result=findings ;; 2) result=usage-error ;; 3) result=could-not-audit" in script


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (scripts/setup.sh)")
def test_action_script_passes_shellcheck(tmp_path: Path) -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/bash\n" + action["runs"]["steps"][0]["run"])
    proc = subprocess.run(["shellcheck", "-s", "bash", "-e", "SC2154", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_cronjob_runs_the_image_unprivileged_with_the_password_from_a_secret() -> None:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "kubernetes" / "cronjob.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Secret", "ConfigMap", "CronJob", "PersistentVolumeClaim"}
    job = kinds["CronJob"]["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert args[:2] == ["audit", "https://registry.example.com"]
    assert "--password-file=/run/secrets/regaudit/password" in args
    assert not any("password=" in a and "file" not in a for a in args)
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["backoffLimit"] == 0
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["password"]["secret"]["secretName"] == kinds["Secret"]["metadata"]["name"]


def test_the_rootfs_tar_is_deterministic(tmp_path: Path) -> None:
    build = _build_module()
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_text("x")
    (root / "z").write_text("y")
    (root / "a" / "link").symlink_to("b/file")
    first = build.pack(root, tmp_path / "one.tar", 1_700_000_000)
    (root / "z").touch()  # a later mtime must not change the tar
    second = build.pack(root, tmp_path / "two.tar", 1_700_000_000)
    assert first == second == hashlib.sha256((tmp_path / "one.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "one.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 1_700_000_000)}
