"""Audit history: every run recorded in a local SQLite store, for trends, diffs and baselines.

The store lives in the state directory: $REGAUDIT_STATE_DIR, else /var/lib/regaudit as root,
else $XDG_STATE_HOME/regaudit (~/.local/state/regaudit). Run ids may be abbreviated to a unique
prefix, or given as `latest` / `latest~N` for the newest runs of a target.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import UsageError
from auditor.model import Status
from auditor.report import AuditReport

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    profile TEXT NOT NULL,
    judged_at TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    score REAL,
    grade TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    counts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_target ON runs (target, judged_at);
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    check_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_by_run ON findings (run_id);
"""
RECORDED = (Status.FAIL, Status.ERROR, Status.WARN, Status.WAIVED)


def state_dir() -> Path:
    explicit = os.environ.get("REGAUDIT_STATE_DIR")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/regaudit")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "regaudit"


def target_key(target: dict[str, Any]) -> str:
    """How runs of one deployment are grouped: a fleet target's inventory name, else its URL, else
    the host name for inside-only audits."""
    if target.get("name"):
        return str(target["name"])
    url = target.get("url")
    return str(url) if url else f"inside://{socket.gethostname()}"


@contextmanager
def connect(directory: Path | None = None) -> Iterator[sqlite3.Connection]:
    path = (directory or state_dir()) / "history.sqlite"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the history store {path}: {exc}") from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
        yield conn
        conn.commit()
    finally:
        conn.close()


def record(report: AuditReport, directory: Path | None = None) -> None:
    """Store a run and its non-passing results."""
    with connect(directory) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (report.run_id, target_key(dict(report.target)), str(report.profile.get("name")), report.judged_at,
             report.started_at, report.ended_at, report.scores.overall, report.scores.grade, report.exit_code,
             json.dumps(report.counts())),
        )
        conn.executemany(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?)",
            [(report.run_id, r.check_id, r.subject, r.status.value, r.severity.label, r.message)
             for r in report.results if r.status in RECORDED],
        )


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    target: str
    profile: str
    judged_at: str
    score: float | None
    grade: str
    exit_code: int
    failing: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def runs(target: str | None = None, limit: int = 50, directory: Path | None = None) -> list[RunSummary]:
    """Runs, newest first (optionally of one target)."""
    query = ("SELECT r.*, (SELECT COUNT(*) FROM findings f WHERE f.run_id = r.run_id AND f.status IN "
             "('fail', 'error')) AS failing FROM runs r")
    params: list[Any] = []
    if target:
        query += " WHERE r.target = ?"
        params.append(target)
    query += " ORDER BY r.judged_at DESC, r.rowid DESC LIMIT ?"
    params.append(limit)
    with connect(directory) as conn:
        rows = conn.execute(query, params).fetchall()
    return [RunSummary(row["run_id"], row["target"], row["profile"], row["judged_at"], row["score"],
                       row["grade"], row["exit_code"], row["failing"]) for row in rows]


def summary_of(report: AuditReport) -> dict[str, Any]:
    """The trend row of a run that is not read back from the store."""
    failing = sum(1 for r in report.results if r.status in (Status.FAIL, Status.ERROR))
    return RunSummary(report.run_id, target_key(dict(report.target)), str(report.profile.get("name")),
                      report.judged_at, report.scores.overall, report.scores.grade, report.exit_code,
                      failing).to_json()


def trend(target: dict[str, Any], limit: int = 30, directory: Path | None = None) -> list[dict[str, Any]]:
    """Past runs of this target, oldest first, for the HTML report's trend."""
    return [r.to_json() for r in reversed(runs(target_key(target), limit, directory))]


def resolve_run(ref: str, directory: Path | None = None) -> str:
    """A full run id from an id, a unique prefix, `latest` or `latest~N`."""
    with connect(directory) as conn:
        if ref.startswith("latest"):
            offset = int(ref.partition("~")[2] or 0) if ref.partition("~")[2].isdigit() or ref == "latest" else -1
            if offset < 0:
                raise UsageError(f"bad run reference {ref!r} (use latest or latest~N)")
            row = conn.execute("SELECT run_id FROM runs ORDER BY judged_at DESC, rowid DESC LIMIT 1 OFFSET ?",
                               (offset,)).fetchone()
            if row is None:
                raise UsageError(f"no run {ref} in the history store")
            return str(row["run_id"])
        rows = conn.execute("SELECT run_id FROM runs WHERE run_id LIKE ?", (ref + "%",)).fetchall()
    if not rows:
        raise UsageError(f"no run {ref!r} in the history store {state_dir()}")
    if len(rows) > 1:
        raise UsageError(f"run id prefix {ref!r} is ambiguous ({len(rows)} runs)")
    return str(rows[0]["run_id"])


def findings_of_run(ref: str, directory: Path | None = None) -> dict[tuple[str, str], dict[str, str]]:
    run_id = resolve_run(ref, directory)
    with connect(directory) as conn:
        rows = conn.execute("SELECT * FROM findings WHERE run_id = ?", (run_id,)).fetchall()
    return {(row["check_id"], row["subject"]): dict(row) for row in rows}


def failing_pairs_of_run(ref: str, directory: Path | None = None) -> frozenset[tuple[str, str]]:
    """(check id, subject) of the failing or erroring results of a recorded run."""
    return frozenset(k for k, v in findings_of_run(ref, directory).items() if v["status"] in ("fail", "error"))


def diff(old_ref: str, new_ref: str, directory: Path | None = None) -> dict[str, list[dict[str, str]]]:
    """New, fixed and still-failing findings between two runs (fail and error count as failing)."""
    old = {k: v for k, v in findings_of_run(old_ref, directory).items() if v["status"] in ("fail", "error")}
    new = {k: v for k, v in findings_of_run(new_ref, directory).items() if v["status"] in ("fail", "error")}

    def rows(keys: set[tuple[str, str]], source: dict) -> list[dict[str, str]]:
        return [{"check": k[0], "subject": k[1], "status": source[k]["status"], "severity": source[k]["severity"],
                 "message": source[k]["message"]} for k in sorted(keys)]

    return {
        "new": rows(set(new) - set(old), new),
        "fixed": rows(set(old) - set(new), old),
        "still_failing": rows(set(old) & set(new), new),
    }
