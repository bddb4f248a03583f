"""pytest plugin: every run of the regaudit CLI a test makes is scanned for leaked credentials.

It wraps `subprocess.Popen` for the whole session (so `subprocess.run`, `check_output`, asyncio
subprocesses and any helper a new test writes are covered without opting in) and records each
command that runs regaudit (`regaudit ...`, `python -m auditor[.cli] ...`, also behind
`ip netns exec` / `nsenter` / `setpriv`). After every test, each CLI run recorded since the
previous test is scanned:

- its captured stdout and stderr;
- every file the run wrote (modified since it started) under the paths named in its arguments
  (--output, --evidence-out, --plan, --scan-dir ... any existing path) and its state directory
  (REGAUDIT_STATE_DIR: history database, remediation journal, backups);

for each secret the run could know: the password in REGAUDIT_PASSWORD or its --password-file, the
passwords of every lab variant (their lab.json), secrets tests register with `register_secret`,
the Basic form base64(user:password) of each, and any JWT bearer token (the lab token server's
tokens are JWTs). A hit fails the test, naming the secret's kind and where it was found (never the
secret itself). The terminal summary says how many runs and files were scanned.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LAB_ROOT = Path(os.environ.get("REGAUDIT_LAB_ROOT", "/var/lib/regaudit-lab"))
MIN_SECRET = 8  # shorter strings would match by chance
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES_PER_RUN = 20_000
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
PATH_FLAGS = {"--output", "--evidence-out", "--plan", "--scan-dir", "--password-file", "--docker-config"}

_registered: set[str] = set()
_pending: list[CliRun] = []
_stats = {"runs": 0, "files": 0, "bytes": 0}


def register_secret(value: str) -> None:
    """A secret a test's fake server hands out (a bearer token ...): scanned for from now on."""
    if len(value) >= MIN_SECRET:
        _registered.add(value)


@dataclass
class CliRun:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    started: float
    outputs: list[bytes] = field(default_factory=list)


def _is_cli(argv: Sequence[str]) -> bool:
    for index, arg in enumerate(argv):
        if os.path.basename(arg) == "regaudit":
            return True
        if arg == "-m" and index + 1 < len(argv) and argv[index + 1] in ("auditor", "auditor.cli"):
            return True
    return False


def _argv(args: Any) -> list[str] | None:
    if isinstance(args, str | bytes | os.PathLike):
        text = os.fsdecode(args)
        return text.split() if "regaudit" in text or "auditor" in text else None
    try:
        return [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in args]
    except TypeError:
        return None


class _WatchedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """subprocess.Popen that records regaudit runs and what they printed to captured pipes."""

    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        super().__init__(args, *rest, **kwargs)
        argv = _argv(args)
        self._regaudit_run: CliRun | None = None
        if argv and _is_cli(argv):
            env = kwargs.get("env")
            run = CliRun(argv, dict(env if env is not None else os.environ), str(kwargs.get("cwd") or os.getcwd()),
                         time.time() - 1.0)
            self._regaudit_run = run
            _pending.append(run)

    def communicate(self, *args: Any, **kwargs: Any) -> Any:
        out, err = super().communicate(*args, **kwargs)
        if self._regaudit_run is not None:
            for stream in (out, err):
                if stream:
                    self._regaudit_run.outputs.append(stream.encode() if isinstance(stream, str) else stream)
        return out, err


def _lab_secrets() -> dict[str, str]:
    """password -> username for every lab variant on this machine."""
    out: dict[str, str] = {}
    for lab_json in LAB_ROOT.glob("*/lab.json"):
        try:
            auth = json.loads(lab_json.read_text()).get("auth") or {}
            users = auth.get("users") or {auth.get("username", "auditor"): {"password_file": auth.get("password_file")}}
            for user, info in users.items():
                if isinstance(info, dict) and info.get("password_file"):
                    password = Path(info["password_file"]).read_text().strip()
                    if len(password) >= MIN_SECRET:
                        out[password] = str(user)
        except (OSError, ValueError, AttributeError):
            continue
    return out


def _password_files() -> set[str]:
    files = set()
    for lab_json in LAB_ROOT.glob("*/lab.json"):
        try:
            auth = json.loads(lab_json.read_text()).get("auth") or {}
        except (OSError, ValueError):
            continue
        for info in (auth.get("users") or {}).values():
            if isinstance(info, dict) and info.get("password_file"):
                files.add(str(Path(info["password_file"]).resolve()))
        if auth.get("password_file"):
            files.add(str(Path(auth["password_file"]).resolve()))
    return files


def _flag_value(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def secrets_of(run: CliRun) -> dict[bytes, str]:
    """Every byte string that must not appear in what `run` printed or wrote, with its kind."""
    passwords: dict[str, set[str]] = {}
    for password, user in _lab_secrets().items():
        passwords.setdefault(password, set()).add(user)
    users = {run.env.get("REGAUDIT_USERNAME") or "", _flag_value(run.argv, "--username") or "", "auditor"} - {""}
    if run.env.get("REGAUDIT_PASSWORD"):
        passwords.setdefault(run.env["REGAUDIT_PASSWORD"], set()).update(users)
    password_file = _flag_value(run.argv, "--password-file")
    if password_file:
        with contextlib.suppress(OSError):
            passwords.setdefault(Path(password_file).read_text().strip(), set()).update(users)
    out: dict[bytes, str] = {}
    for password, names in passwords.items():
        if len(password) < MIN_SECRET:
            continue
        out[password.encode()] = "password"
        for user in names | users:
            out[base64.b64encode(f"{user}:{password}".encode())] = f"Basic credentials of {user}"
    for value in _registered:
        out[value.encode()] = "registered secret (bearer token)"
    return out


def _roots(run: CliRun) -> list[Path]:
    roots: list[Path] = []
    for index, arg in enumerate(run.argv):
        candidate = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if (index > 0 and run.argv[index - 1] in PATH_FLAGS) or candidate.startswith(("/", "./")):
            path = Path(candidate) if os.path.isabs(candidate) else Path(run.cwd) / candidate
            if path.exists() and str(path) != "/":
                roots.append(path)
    state = run.env.get("REGAUDIT_STATE_DIR")
    if state and Path(state).exists():
        roots.append(Path(state))
    return roots


def _skip_root(path: Path) -> bool:
    text = str(path.resolve())
    return text in ("/", "/tmp", "/var", "/etc", "/usr") or text.startswith(("/usr/", "/proc", "/sys", "/dev"))


def _written_files(run: CliRun) -> Iterator[Path]:
    seen: set[str] = set()
    skip = _password_files()
    count = 0
    scan_dir = _flag_value(run.argv, "--scan-dir")
    for root in _roots(run):
        if _skip_root(root) or (root.resolve().is_relative_to(LAB_ROOT) and str(root) != scan_dir):
            continue  # the lab's own trees (storage, configs) are not the run's output
        walker = [root] if root.is_file() else (p for p in root.rglob("*"))
        for path in walker:
            if count >= MAX_FILES_PER_RUN:
                return
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                st = path.stat()
            except OSError:
                continue
            key = str(path.resolve())
            if key in seen or key in skip or st.st_mtime < run.started or st.st_size > MAX_FILE_BYTES:
                continue
            seen.add(key)
            count += 1
            yield path


def scan(run: CliRun) -> list[str]:
    """Leaks in `run`'s output and written files: one line each (kind and place, not the secret)."""
    secrets = secrets_of(run)
    hits: list[str] = []
    places: list[tuple[str, bytes]] = [(f"{'stdout' if i == 0 else 'stderr'} of {' '.join(run.argv[:6])}", o)
                                       for i, o in enumerate(run.outputs)]
    for path in _written_files(run):
        try:
            places.append((str(path), path.read_bytes()))
        except OSError:
            continue
        _stats["files"] += 1
    for where, data in places:
        _stats["bytes"] += len(data)
        for secret, kind in secrets.items():
            if secret in data:
                hits.append(f"{kind} found in {where}")
        if JWT.search(data):
            hits.append(f"a JWT bearer token found in {where}")
    return hits


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen = _WatchedPopen  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _no_secret_leaks() -> Iterator[None]:
    """Scan every regaudit run recorded since the previous test (its own and its fixtures')."""
    yield
    runs = list(_pending)
    _pending.clear()
    hits: list[str] = []
    for run in runs:
        _stats["runs"] += 1
        hits += scan(run)
    if hits:
        pytest.fail("secret leaked by the regaudit CLI:\n" + "\n".join(sorted(set(hits))), pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _stats["runs"]:
        terminalreporter.write_line(
            f"secret scan: {_stats['runs']} regaudit run(s), {_stats['files']} written file(s), "
            f"{_stats['bytes'] // 1024} KiB scanned for passwords, Basic credentials and bearer tokens")
