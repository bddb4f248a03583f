"""files.*: real files in a tmp dir (modes, owners), htpasswd entries made by the real htpasswd tool,
and the paths taken from the proxy and registry config evidence."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.checkapi import ProbeRecord
from auditor.host import files
from auditor.model import Status
from auditor.probes.files import gather

from .helpers import judge

PASSWORD = "correct horse battery staple"


def htpasswd_file(path: Path, entries: list[tuple[str, str]]) -> None:
    """entries: (user, htpasswd scheme flag); the password goes through stdin."""
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd (apache2-utils) is not installed")
    for user, flag in entries:
        args = ["htpasswd", "-i", flag, *(["-c"] if not path.exists() else []), str(path), user]
        subprocess.run(args, input=PASSWORD + "\n", text=True, check=True, capture_output=True)


def evidence(src: dict, key: str | None = None, ht: str | None = None) -> dict[str, ProbeRecord]:
    return {"files.stat": ProbeRecord("files.stat", "ok", gather(src, {}, key, ht))}


def test_schemes_of_real_htpasswd_entries(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    htpasswd_file(path, [("alice", "-B"), ("bob", "-m"), ("carol", "-s"), ("dave", "-5"), ("erin", "-p"), ("frank", "-2")])
    schemes = {e["user"]: e["scheme"] for e in files.htpasswd_entries(path.read_text())}
    assert schemes == {"alice": "bcrypt", "bob": "apr1-md5", "carol": "sha1", "dave": "sha512-crypt", "frank": "sha256-crypt",
                       "erin": "crypt-or-plain"}


def test_htpasswd_check(tmp_path: Path) -> None:
    good = tmp_path / "good"
    htpasswd_file(good, [("alice", "-B"), ("bob", "-B")])
    os.chmod(good, 0o640)
    src = {"config.apache": {"path": "/etc/apache2/apache2.conf", "server_root": "/etc/apache2",
                             "v2_access": {"auth_user_file": {"value": str(good), "where": "a.conf:3"}}}}
    (ok,) = judge("files.htpasswd", evidence(src))
    assert ok.status is Status.PASS and "2 entries, all bcrypt" in ok.message
    assert ok.observed["source"] == "Apache AuthUserFile (a.conf:3)"
    bad = tmp_path / "bad"
    htpasswd_file(bad, [("alice", "-B"), ("legacy", "-s")])
    os.chmod(bad, 0o644)
    (fail,) = judge("files.htpasswd", evidence({}, ht=str(bad)))
    assert fail.status is Status.FAIL
    assert "world-readable (mode 0644)" in fail.message and "legacy (sha1)" in fail.message
    assert PASSWORD not in str(fail.observed) and "{SHA}" not in str(fail.observed)


def test_tls_key_modes_and_owner(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_text("not really a key\n")
    src = {"config.apache": {"path": "/a.conf", "server_root": str(tmp_path),
                             "vhost": {"ssl_certificate_key_file": ["server.key"]}}}
    for mode, status in ((0o600, Status.PASS), (0o400, Status.PASS), (0o640, Status.FAIL), (0o644, Status.FAIL)):
        os.chmod(key, mode)
        (result,) = judge("files.tls-key", evidence(src))
        assert result.subject == str(key) and result.status is status, (oct(mode), result)
    if os.geteuid() == 0:
        os.chmod(key, 0o600)
        os.chown(key, 65534, 65534)
        (result,) = judge("files.tls-key", evidence(src))
        assert result.status is Status.FAIL and "owned by" in result.message


def test_a_named_key_that_does_not_exist_fails(tmp_path: Path) -> None:
    (result,) = judge("files.tls-key", evidence({}, key=str(tmp_path / "missing.key")))
    assert result.status is Status.FAIL and "does not exist" in result.message


def test_nothing_named_is_skip_and_broken_evidence_is_error() -> None:
    (skip,) = judge("files.tls-key", evidence({}))
    assert skip.status is Status.SKIP
    broken = {"files.stat": ProbeRecord("files.stat", "ok", gather({}, {"config.apache": "error: boom"}, None, None))}
    (err,) = judge("files.tls-key", broken)
    assert err.status is Status.ERROR and "boom" in err.message


def test_configs_with_includes(tmp_path: Path) -> None:
    main = tmp_path / "nginx.conf"
    inc = tmp_path / "conf.d.conf"
    reg = tmp_path / "config.yml"
    for path in (main, inc, reg):
        path.write_text("x\n")
        os.chmod(path, 0o644)
    os.chmod(inc, 0o664)
    src = {"config.registry": {"path": str(reg)},
           "config.nginx": {"path": str(main), "files": [{"path": str(main)}, {"path": str(inc)}]}}
    results = {r.subject: r for r in judge("files.configs", evidence(src))}
    assert set(results) == {str(main), str(inc), str(reg)}
    assert results[str(inc)].status is Status.FAIL and "writable by group or others" in results[str(inc)].message
    assert results[str(main)].status is Status.PASS and results[str(reg)].status is Status.PASS
