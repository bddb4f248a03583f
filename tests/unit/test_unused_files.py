"""No judgement of files nothing uses: an auto-found registry config that no process or container uses
is named and not judged; files.* judge files, never directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import NotApplicable
from auditor.host import files
from auditor.model import Status
from auditor.probes import registry_config
from auditor.target import Target

from .helpers import judge, records, run_probe

NOTHING_RUNS = {"registry": None, "registries": [], "containers": [],
                "docker": {"socket": "/var/run/docker.sock", "state": "absent"}}


def test_an_unused_default_config_is_named_and_not_judged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    default = tmp_path / "config.yml"
    default.write_text("version: 0.1\nhttp:\n  addr: :5000\n")
    monkeypatch.setattr(registry_config, "DEFAULT_PATHS", (str(default),))
    target = Target(inside=True)
    with pytest.raises(NotApplicable) as caught:
        run_probe(registry_config.registry_config, target, {"host.discovery": NOTHING_RUNS})
    message = str(caught.value)
    assert f"{default} exists but no process uses it" in message
    assert "/var/run/docker.sock: absent" in message and "--registry-config" in message


def test_the_config_a_process_runs_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    used = tmp_path / "used.yml"
    used.write_text("version: 0.1\n")
    running = {**NOTHING_RUNS, "registry": {"pid": 7, "config": str(used), "config_source": "command line"}}
    facts = run_probe(registry_config.registry_config, Target(inside=True), {"host.discovery": running})
    assert facts["path"] == str(used) and facts["source"] == "command line"


def test_files_checks_never_judge_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    directory.mkdir(mode=0o755)
    facts = {"tls_keys": [files.stat_facts(str(directory), "nginx ssl_certificate_key")],
             "htpasswd": [files.htpasswd_facts(str(directory), "registry auth.htpasswd.path")],
             "configs": [files.stat_facts(str(directory), "registry config")], "sources": [],
             "sources_unavailable": {}}
    for check in ("files.tls-key", "files.htpasswd", "files.configs"):
        (result,) = judge(check, records(files__stat=facts))
        assert result.status == Status.ERROR, check
        assert "is a directory: not judged" in result.message and "world-readable" not in result.message
