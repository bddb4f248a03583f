"""The apply journal: every step recorded (fsynced) before it is taken, so a rollback can undo it.

It lives in the state directory (auditor.history.state_dir()/remediation/journal.json) with the
backups of the files it touched in backups/<timestamp>/ (a manifest.json beside the copies).
Status: running (an apply is in progress or crashed), applied, rolled_back, failed_rollback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import bounded
from auditor.errors import UsageError
from auditor.history import state_dir

from .fsops import write_durably

FORMAT = "regaudit-remediation-journal/1"
UNFINISHED = ("running", "failed_rollback")


def remediation_dir() -> Path:
    return state_dir() / "remediation"


def journal_path() -> Path:
    return remediation_dir() / "journal.json"


@dataclass
class Journal:
    """The journal of one apply; `save()` makes it durable."""

    id: str
    backup_dir: str
    status: str = "running"
    started_at: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)
    firewall: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    path: Path = field(default_factory=journal_path)

    @classmethod
    def create(cls) -> Journal:
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
        backup = remediation_dir() / "backups" / stamp
        backup.mkdir(parents=True, mode=0o700)
        journal = cls(id=stamp, backup_dir=str(backup), started_at=now.isoformat(timespec="seconds"))
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path | None = None) -> Journal | None:
        path = path or journal_path()
        try:
            if not path.exists() and not path.is_symlink():
                return None
            data = bounded.load_json_file(path, what="remediation journal")
        except bounded.InputError as exc:
            raise UsageError(f"cannot read {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f"{path} is not a regaudit remediation journal")
        missing = [k for k in ("id", "backup_dir", "status") if not isinstance(data.get(k), str)]
        if missing or not isinstance(data.get("steps", []), list):
            raise UsageError(f"{path} is a damaged remediation journal (missing {', '.join(missing) or 'steps'}): "
                             "restore the files from its backups directory by hand")
        return cls(id=data["id"], backup_dir=data["backup_dir"], status=data["status"],
                   started_at=data.get("started_at", ""), steps=data.get("steps", []),
                   services=data.get("services", {}), firewall=data.get("firewall", {}),
                   messages=data.get("messages", []), path=path)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "status": self.status, "started_at": self.started_at,
                "backup_dir": self.backup_dir, "steps": self.steps, "services": self.services,
                "firewall": self.firewall, "messages": self.messages}

    def save(self) -> None:
        write_durably(self.path, (json.dumps(self.to_json(), indent=1) + "\n").encode())
        manifest = {"journal": self.id, "started_at": self.started_at,
                    "files": [s for s in self.steps if s.get("kind") == "file"]}
        write_durably(Path(self.backup_dir) / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())

    def record(self, step: dict[str, Any]) -> dict[str, Any]:
        """Append a step (state 'intent') and save; the caller marks it 'done' after acting."""
        step = {**step, "state": "intent"}
        self.steps.append(step)
        self.save()
        return step

    def done(self, step: dict[str, Any], **extra: Any) -> None:
        step.update(extra, state="done")
        self.save()
        _kill_after_step()

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED


FAULT = "REGAUDIT_REMEDIATE_FAULT"
_done_steps = 0


def _kill_after_step() -> None:
    """Fault injection for the crash-safety tests: `kill-after-step:N` SIGKILLs this process right
    after the Nth journal step is recorded done (the test then proves --rollback restores all)."""
    global _done_steps
    _done_steps += 1
    value = os.environ.get(FAULT, "")
    if value.startswith("kill-after-step:") and value.split(":", 1)[1] == str(_done_steps):
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold the remediation lock (one apply, rollback or confirm at a time on this host/state dir).

    Raises UsageError at once when another holds it; the kernel drops the lock when its holder
    dies, so a killed apply never leaves it stuck (the journal then says what is unfinished)."""
    folder = remediation_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another `regaudit remediate` is running on this host (lock {path} is held): "
                             "two applies at once are refused") from None
        yield
    finally:
        os.close(fd)

