"""Processes for remediation: a step's command (through auditor.subproc), a process's spec, children,
listening sockets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.subproc import run


class StepError(RuntimeError):
    """A remediation step failed; the message says which and why (apply rolls back)."""


def must(argv: Sequence[str], what: str, *, input: str | None = None, env: Mapping[str, str] | None = None,
         timeout: float = 60.0) -> str:
    """The command's stdout; StepError naming `what` when it cannot run or exits non-zero."""
    cp = run(argv, input=input, env=env, timeout=timeout)
    if cp.returncode != 0:
        raise StepError(f"{what} failed (exit {cp.returncode}): {(cp.stderr or cp.stdout).strip()[-600:]}")
    return cp.stdout


@dataclass(frozen=True)
class ProcessSpec:
    """How a process was started: executable, argv, environment, cwd, where its output went."""

    exe: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    stdout: str | None
    stderr: str | None

    @classmethod
    def read(cls, pid: int) -> ProcessSpec:
        base = Path(f"/proc/{pid}")
        argv = [a.decode() for a in (base / "cmdline").read_bytes().split(b"\0") if a]
        env = dict(item.decode(errors="replace").split("=", 1)
                   for item in (base / "environ").read_bytes().split(b"\0") if b"=" in item)
        outputs = []
        for fd in (1, 2):
            try:
                target = os.readlink(base / "fd" / str(fd))
            except OSError:
                target = ""
            outputs.append(target if target.startswith("/") and Path(target).is_file() else None)
        return cls(exe=os.readlink(base / "exe"), argv=argv, env=env, cwd=os.readlink(base / "cwd"),
                   stdout=outputs[0], stderr=outputs[1])

    def to_json(self) -> dict[str, object]:
        return {"exe": self.exe, "argv": self.argv, "env": self.env, "cwd": self.cwd, "stdout": self.stdout,
                "stderr": self.stderr}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ProcessSpec:
        return cls(exe=str(data["exe"]), argv=list(data["argv"]), env=dict(data["env"]),  # type: ignore[call-overload]
                   cwd=str(data["cwd"]), stdout=data.get("stdout"), stderr=data.get("stderr"))  # type: ignore[arg-type]


def children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields and int(fields[1]) == pid:
            out.add(int(entry.name))
    return out


def listening(pid: int, port: int) -> bool:
    """Whether tcp `port` is in LISTEN state in the network namespace of `pid`."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def find_pids(match: str) -> list[int]:
    """PIDs whose command line contains `match` (used to find a restarted registry after a crash)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match in cmd and int(entry.name) != os.getpid():
                out.append(int(entry.name))
    return out
