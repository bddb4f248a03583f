"""Resource bounds wherever input is read: hostile files give one clear answer naming the file.

The YAML bombs are the ones a user met: ten levels of nine aliases hung an inside audit past 60 s,
and a deeply nested document ended in "probe crashed: RecursionError". Each case here runs the real
CLI (or, for permission denied, the CLI's own code in a process that dropped root for `nobody`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from auditor import bounded

from .test_cli import regaudit

LAUGHS = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["version: 0.1", "storage: {filesystem: {rootdirectory: /var/lib/registry}}", "x: *a9", ""])
DEEP_SEQ = "version: 0.1\nx: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_MAP = "version: 0.1\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"
RECURSIVE = "version: 0.1\nx: &a [1, *a]\n"


def _config_verdict(tmp_path: Path, config: Path | str) -> tuple[subprocess.CompletedProcess, dict]:
    started = time.monotonic()
    proc = regaudit("audit", "--inside", "--registry-config", str(config), "--no-progress", "--no-history",
                    "--select", "registry.config-valid", "--format", "json", "--output", str(tmp_path / "out"))
    assert time.monotonic() - started < 30, "the audit must not hang on a hostile config"
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "regaudit.json").read_text())
    (result,) = [r for r in report["results"] if r["check"] == "registry.config-valid"]
    return proc, result


@pytest.mark.parametrize(("text", "reason"), [
    (LAUGHS, "nodes once aliases are expanded"),
    (DEEP_SEQ, "nesting deeper than 64 levels"),
    (DEEP_MAP, "nesting deeper than 64 levels"),
    (RECURSIVE, "recursive alias"),
], ids=["billion-laughs", "deep-sequence", "deep-mapping", "recursive-alias"])
def test_yaml_bombs_in_the_registry_config_fail_config_valid_naming_the_reason(
        tmp_path: Path, text: str, reason: str) -> None:
    config = tmp_path / "config.yml"
    config.write_text(text)
    _, result = _config_verdict(tmp_path, config)
    assert result["status"] == "fail"
    assert reason in result["message"] and str(config) in json.dumps(result)


def test_a_deep_but_reasonable_config_still_parses() -> None:
    doc = bounded.load_yaml("a: " + "{b: " * 60 + "1" + "}" * 60, "t")
    assert isinstance(doc, dict)
    anchors = "base: &b {level: info}\nlog: *b\nother: {<<: *b, formatter: json}\n"
    assert bounded.load_yaml(anchors, "t")["other"] == {"level": "info", "formatter": "json"}


@pytest.fixture
def odd_files(tmp_path: Path) -> dict[str, Path]:
    loop = tmp_path / "loop-a"
    os.symlink(tmp_path / "loop-b", loop)
    os.symlink(loop, tmp_path / "loop-b")
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yml"
    big.write_text("version: 0.1\n" + "# padding\n" * 200_000)
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes("version: 0.1\nlog: {fields: {owner: 'José'}}\n".encode("latin-1"))
    return {"directory": tmp_path, "symlink loop": loop, "not a regular file": fifo,
            "larger than": big, "not UTF-8": latin1}


@pytest.mark.parametrize("kind", ["directory", "symlink loop", "not a regular file", "larger than", "not UTF-8"])
def test_odd_registry_config_files_give_an_answer_naming_the_file(
        tmp_path: Path, odd_files: dict[str, Path], kind: str) -> None:
    config = odd_files[kind]
    if kind == "symlink loop":  # refused up front, like a missing file
        proc = regaudit("audit", "--inside", "--registry-config", str(config), "--no-progress")
        assert proc.returncode == 2 and proc.stderr.strip() == \
            f"regaudit: error: --registry-config {config}: symlink loop"
        return
    _, result = _config_verdict(tmp_path, config)
    assert result["status"] in ("error", "fail")
    assert str(config) in json.dumps(result)
    assert kind in result["message"] or (kind == "directory" and "is a directory" in result["message"])


@pytest.mark.parametrize("kind", ["directory", "symlink loop", "not a regular file", "not UTF-8"])
def test_odd_profile_and_evidence_files_are_exit_2_naming_the_file(odd_files: dict[str, Path], kind: str) -> None:
    path = odd_files[kind]
    for args in (["evaluate", str(path)], ["audit", "http://127.0.0.1:9", "--profile", str(path)]):
        proc = regaudit(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert str(path) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ("huge-int.json", '{"format": ' + "9" * 5000 + "}", "invalid JSON"),
    ("truncated.json", '{"format": "regaudit-evidence/1", "probes": {', "invalid JSON"),
], ids=["deep", "huge-int", "truncated"])  # short ids: pytest puts the test id in PYTEST_CURRENT_TEST
def test_hostile_json_inputs_are_exit_2(tmp_path: Path, name: str, text: str, reason: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(text)
    for args, env in ((["evaluate", str(path)], None),
                      (["audit", "https://127.0.0.1:9", "--select", "auth.*", "--baseline", str(path)], None),
                      (["audit", "https://127.0.0.1:9", "--docker-config", str(home / ".docker" / "config.json")],
                       None)):
        proc = regaudit(*args, env=env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert reason in proc.stderr and "Traceback" not in proc.stderr


def test_json_and_yaml_limits_are_exact() -> None:
    assert bounded.load_json("[" * 128 + "]" * 128, "t") is not None
    with pytest.raises(bounded.InputError, match="nested deeper than 128"):
        bounded.load_json("[" * 129 + "]" * 129, "t")
    with pytest.raises(bounded.InputError, match="larger than 10 bytes"):
        bounded.load_json('"' + "x" * 20 + '"', "t", max_bytes=10)
    assert bounded.load_yaml("a: " + "[" * 63 + "]" * 63, "t")
    with pytest.raises(bounded.InputError, match="deeper than 64"):
        bounded.load_yaml("[" * 65 + "]" * 65, "t")
    with pytest.raises(bounded.InputError, match="aliases are expanded"):
        bounded.load_yaml("a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: [*b, *b]\n", "t", max_nodes=20)
    with pytest.raises(yaml.YAMLError):
        bounded.load_yaml("a: [", "t")


@pytest.fixture(scope="module")
def world_readable_dir() -> Iterator[Path]:
    """A directory `nobody` can enter (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="regaudit-bounds-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def _cli_as_nobody(argv: list[str]) -> tuple[int, str]:
    """Run the CLI's own main() in a forked child that dropped root for `nobody` (uid 65534).

    The venv's interpreter may live where `nobody` cannot read it, so the child does not exec: it
    inherits the already imported CLI (warmed up by the caller) and only the kernel's permission
    check on the file under test differs from a real non-root run.
    """
    from auditor import cli

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = cli.main(argv)
            os.write(write_fd, err.getvalue().encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to `nobody` needs root")
def test_unreadable_files_are_permission_denied_for_a_non_root_user(world_readable_dir: Path) -> None:
    from auditor import cli

    secret = world_readable_dir / "evidence.json"
    secret.write_text("{}")
    secret.chmod(0o600)  # root's, so `nobody` may not read it
    profile = world_readable_dir / "profile.yaml"
    profile.write_text("name: x\n")
    profile.chmod(0o600)
    with contextlib.redirect_stderr(io.StringIO()):
        cli.main(["evaluate", str(world_readable_dir / "missing.json")])  # warm up the imports as root
    for argv in (["evaluate", str(secret)], ["audit", "http://127.0.0.1:9", "--profile", str(profile)]):
        code, err = _cli_as_nobody(argv)
        assert code == 2, err
        assert "permission denied" in err and argv[-1] in err and "Traceback" not in err
    config = world_readable_dir / "config.yml"
    config.write_text("version: 0.1\n")
    config.chmod(0o600)
    from auditor.errors import ProbeError
    from auditor.probes.registry_config import read_registry_config

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        try:
            read_registry_config(str(config), "explicit")
            message = "read it"
        except ProbeError as exc:
            message = str(exc)
        os.write(write_fd, message.encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message == f"cannot read registry config {config}: permission denied"
