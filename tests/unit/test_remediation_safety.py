"""Remediation safety without a lab: symlinked targets and the one-apply-at-a-time lock.

(The kill-at-every-journal-step test runs on a private lab copy: tests/integration/test_remediation_lab.py.)
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from auditor.remediation.apply import write_target
from auditor.remediation.procs import StepError


def test_a_plain_file_is_written_itself(tmp_path: Path) -> None:
    real = tmp_path / "nginx.conf"
    real.write_text("x")
    assert write_target(real, tmp_path) == real


def test_a_link_inside_the_config_directory_writes_its_target(tmp_path: Path) -> None:
    (tmp_path / "sites-available").mkdir()
    (tmp_path / "sites-enabled").mkdir()
    site = tmp_path / "sites-available" / "registry"
    site.write_text("server {}")
    link = tmp_path / "sites-enabled" / "registry"
    link.symlink_to("../sites-available/registry")
    assert write_target(link, tmp_path) == site
    with pytest.raises(StepError, match="outside"):
        write_target(link, None)  # without the service's config directory: only the link's own


@pytest.mark.parametrize("case", ["outside", "dangling", "loop", "directory"])
def test_links_out_of_the_configured_path_are_refused(tmp_path: Path, case: str) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    link = conf / "config.yml"
    if case == "outside":
        (tmp_path / "shadow").write_text("root:x:0:0")
        link.symlink_to(tmp_path / "shadow")
    elif case == "dangling":
        link.symlink_to(conf / "missing")
    elif case == "loop":
        link.symlink_to(conf / "other")
        (conf / "other").symlink_to(link)
    else:
        (conf / "sub").mkdir()
        link.symlink_to(conf / "sub")
    with pytest.raises(StepError, match="refusing to write through it"):
        write_target(link, conf)


def test_a_second_remediate_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}, "REGAUDIT_STATE_DIR": str(tmp_path)}
    holder = subprocess.Popen(
        ["python", "-c", "import time; from auditor.remediation.journal import exclusive\n"
         "with exclusive():\n    print('held', flush=True); time.sleep(60)"],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for args in (["--rollback"], ["--confirm"]):
            proc = subprocess.run(["regaudit", "remediate", *args], capture_output=True, text=True, env=env,
                                  timeout=120)
            assert proc.returncode == 2, proc.stderr
            assert "two applies at once are refused" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    free = subprocess.run(["regaudit", "remediate", "--rollback"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert free.returncode == 2 and "nothing to roll back" in free.stderr  # the kernel dropped the dead holder's lock


@pytest.mark.parametrize("content", ["{", '{"format": "regaudit-remediation-journal/1"}', "[1, 2]",
                                     "[" * 5000 + "]" * 5000])
def test_a_damaged_journal_is_exit_2_naming_it(tmp_path: Path, content: str) -> None:
    journal = tmp_path / "remediation" / "journal.json"
    journal.parent.mkdir()
    journal.write_text(content)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}, "REGAUDIT_STATE_DIR": str(tmp_path)}
    proc = subprocess.run(["regaudit", "remediate", "--rollback"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and str(journal) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
