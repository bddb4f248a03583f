"""The watcher's durable state: received events, tag verdicts, verdict changes, alert outbox.

One SQLite database in WAL mode with `synchronous=FULL`: a transaction is on disk when
`commit` returns, so an event acknowledged with 2xx survives kill -9 and power loss. Events are
keyed by the registry's event id (`INSERT OR IGNORE`): a retried delivery is counted once.
Every method runs on the caller's thread; the service gives the store one thread of its own.

Tag states: `pending` (pushed, not yet compliant, inside the grace period), `pass`, `fail`,
`error` (the checks could not decide after the grace period), `retired` (deleted).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.judge.scans import scan_filename

from .events import Event, classify

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    received_at REAL NOT NULL,
    timestamp TEXT NOT NULL,
    action TEXT NOT NULL,
    media_type TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_unapplied ON events (applied, seq);
CREATE TABLE IF NOT EXISTS tags (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    pushed_at REAL NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    findings TEXT NOT NULL DEFAULT '[]',
    judged_at REAL,
    dirty INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repository, digest);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    old_state TEXT NOT NULL,
    new_state TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
LIVE = ("pending", "pass", "fail", "error")


@dataclass(frozen=True)
class TagRow:
    repository: str
    tag: str
    digest: str
    pushed_at: float
    state: str
    since: float
    message: str
    findings: list[dict[str, Any]]
    judged_at: float | None

    @property
    def subject(self) -> str:
        return f"{self.repository}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, **self.__dict__}


@dataclass(frozen=True)
class Change:
    at: float
    repository: str
    tag: str
    digest: str
    old_state: str
    new_state: str
    message: str


@dataclass
class Verdict:
    """One tag's judgement: `state` before grace is applied (pass | fail | error), and findings."""

    digest: str
    state: str
    message: str
    findings: list[dict[str, Any]] = field(default_factory=list)


class Store:
    """The database; see the module docstring for the guarantees."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        self.db.close()

    # -- intake ---------------------------------------------------------------------------
    def ingest(self, batches: Sequence[Sequence[Event]], now: float) -> list[int]:
        """Write every batch's events in one transaction; per batch, how many were new."""
        counts = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for events in batches:
                new = 0
                for event in events:
                    meaning = classify(event)
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0)",
                        (event.id, self._seq + 1, now, event.timestamp, event.action, event.media_type,
                         event.repository, event.tag, event.digest, event.actor, meaning.kind, meaning.subject))
                    if cur.rowcount:
                        self._seq += 1
                        new += 1
                counts.append(new)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self._seq = int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
            raise
        return counts

    def unapplied(self, limit: int = 5000) -> list[sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            return self.db.execute("SELECT * FROM events WHERE applied = 0 ORDER BY seq LIMIT ?", (limit,)).fetchall()
        finally:
            self.db.row_factory = None

    def apply(self, rows: Iterable[sqlite3.Row], now: float) -> set[tuple[str, str]]:
        """Apply received events to tag state (pushes start clocks, deletes retire); the tags to judge."""
        to_judge: set[tuple[str, str]] = set()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                to_judge |= self._apply_one(row, row["received_at"])
                self.db.execute("UPDATE events SET applied = 1 WHERE id = ?", (row["id"],))
            self.mark_dirty(to_judge)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return to_judge

    def _apply_one(self, row: sqlite3.Row, at: float) -> set[tuple[str, str]]:
        kind, repo, tag, digest = row["kind"], row["repository"], row["tag"], row["digest"]
        if kind == "tag-push":
            self.note_push(repo, tag, digest, at, "push")
            return {(repo, tag)}
        if kind == "artifact-push":
            found = self.db.execute("SELECT tag FROM tags WHERE repository = ? AND digest = ? AND state != 'retired'",
                                    (repo, row["subject"])).fetchall()
            if not found:  # a signature kept in another repository (COSIGN_REPOSITORY): its subject anywhere
                found = self.db.execute("SELECT repository, tag FROM tags WHERE digest = ? AND state != 'retired'",
                                        (row["subject"],)).fetchall()
                return {(r[0], r[1]) for r in found}
            return {(repo, r[0]) for r in found}
        if kind == "tag-delete":
            self.retire(repo, tag, at, "tag deleted")
            return set()
        if kind == "manifest-delete":
            for (name,) in self.db.execute("SELECT tag FROM tags WHERE repository = ? AND digest = ? "
                                           "AND state != 'retired'", (repo, digest)).fetchall():
                self.retire(repo, name, at, f"manifest {digest} deleted")
            return set()
        if kind == "untagged-push":
            rows = self.db.execute("SELECT tag FROM tags WHERE repository = ? "
                                   "AND state IN ('pending', 'fail', 'error')", (repo,)).fetchall()
            return {(repo, r[0]) for r in rows}
        return set()

    # -- tag state ------------------------------------------------------------------------
    def note_push(self, repo: str, tag: str, digest: str, at: float, why: str) -> None:
        """A tag now points at `digest`: a new digest starts the clock (its old scan no longer counts)."""
        old = self.tag(repo, tag)
        if old is not None and old.digest == digest and old.state != "retired":
            return
        if old is None:
            message = f"{why}: {digest}"
        elif old.state == "retired":
            message = f"{why} after delete: {digest}"
        else:
            message = f"re-{why}: {old.digest} -> {digest}; the old digest's scan and signature no longer count"
        self.db.execute(
            "INSERT INTO tags (repository, tag, digest, pushed_at, state, since, message, findings, dirty) "
            "VALUES (?,?,?,?,'pending',?,?,'[]',2) ON CONFLICT (repository, tag) DO UPDATE SET "
            "digest = excluded.digest, "
            "pushed_at = excluded.pushed_at, state = 'pending', since = excluded.since, message = excluded.message, "
            "findings = '[]', judged_at = NULL, dirty = 2", (repo, tag, digest, at, at, message))
        self._change(at, repo, tag, digest, old.state if old else "new", "pending", message)

    def retire(self, repo: str, tag: str, at: float, why: str) -> None:
        old = self.tag(repo, tag)
        if old is None or old.state == "retired":
            return
        self.db.execute("UPDATE tags SET state = 'retired', since = ?, message = ?, dirty = 0 "
                        "WHERE repository = ? AND tag = ?", (at, why, repo, tag))
        self._change(at, repo, tag, old.digest, old.state, "retired", why)

    def _change(self, at: float, repo: str, tag: str, digest: str, old: str, new: str, message: str) -> None:
        self.db.execute("INSERT INTO changes (at, repository, tag, digest, old_state, new_state, message) "
                        "VALUES (?,?,?,?,?,?,?)", (at, repo, tag, digest, old, new, message))

    def tag(self, repo: str, tag: str) -> TagRow | None:
        row = self.db.execute("SELECT repository, tag, digest, pushed_at, state, since, message, findings, judged_at "
                              "FROM tags WHERE repository = ? AND tag = ?", (repo, tag)).fetchone()
        return _tag_row(row) if row else None

    def tags(self, states: Sequence[str] = LIVE) -> list[TagRow]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute("SELECT repository, tag, digest, pushed_at, state, since, message, findings, judged_at "
                               f"FROM tags WHERE state IN ({marks}) ORDER BY repository, tag", tuple(states)).fetchall()
        return [_tag_row(r) for r in rows]

    def dirty(self, limit: int = 64) -> list[tuple[str, str]]:
        """Tags to judge, those an event marked (2) before re-checks (1)."""
        rows = self.db.execute("SELECT repository, tag FROM tags WHERE dirty > 0 ORDER BY dirty DESC LIMIT ?",
                               (limit,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def recheck(self, now: float, grace: float, scan_dir: str | None, failing_too: bool) -> int:
        """Mark for re-judging: pending tags whose grace is over and tags whose scan report was written
        after their last judgement (level 2, as an event's), and with `failing_too` every failing tag
        (level 1, behind them). Returns how many."""
        urgent = [(r.repository, r.tag) for r in self.tags(("pending",)) if r.pushed_at + grace <= now]
        routine = []
        for row in self.tags(("pending", "fail", "error")):
            if scan_dir:
                try:
                    written = os.stat(os.path.join(scan_dir, scan_filename(row.repository, row.tag))).st_mtime
                except OSError:
                    written = None
                if written is not None and (row.judged_at is None or written >= row.judged_at - 1.0):
                    urgent.append((row.repository, row.tag))
                    continue
            if failing_too and row.state != "pending":
                routine.append((row.repository, row.tag))
        self.mark_dirty(urgent, 2)
        self.mark_dirty(routine, 1)
        return len(urgent) + len(routine)

    def record_verdicts(self, verdicts: Sequence[tuple[str, str, Verdict]], grace: float, now: float,
                        alert: Any = None) -> list[Change]:
        """Store judgements (grace applied: a failing verdict inside the grace period is `pending`).

        A verdict for a digest the tag no longer points at is dropped (a newer push won). `alert`,
        when given, is called as alert(change, row) inside the transaction and returns outbox rows
        [(target, body)] so an alert is queued exactly when its change is stored."""
        changes: list[Change] = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for repo, tag, verdict in verdicts:
                old = self.tag(repo, tag)
                if old is None or old.state == "retired" or old.digest != verdict.digest:
                    continue
                state = verdict.state
                if state != "pass" and now - old.pushed_at < grace:
                    state = "pending"
                findings = json.dumps(verdict.findings, sort_keys=True)
                if state == old.state:
                    self.db.execute("UPDATE tags SET judged_at = ?, findings = ?, message = ?, dirty = 0 "
                                    "WHERE repository = ? AND tag = ?", (now, findings, verdict.message, repo, tag))
                    continue
                self.db.execute("UPDATE tags SET state = ?, since = ?, judged_at = ?, findings = ?, message = ?, "
                                "dirty = 0 WHERE repository = ? AND tag = ?",
                                (state, now, now, findings, verdict.message, repo, tag))
                change = Change(now, repo, tag, verdict.digest, old.state, state, verdict.message)
                self._change(now, repo, tag, verdict.digest, old.state, state, verdict.message)
                changes.append(change)
                if alert is not None:
                    for target, body in alert(change, old):
                        self.db.execute("INSERT INTO outbox (target, body, next_at) VALUES (?,?,?)",
                                        (target, body, now))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return changes

    def mark_dirty(self, keys: Iterable[tuple[str, str]], level: int = 2) -> None:
        """Mark tags to judge: 2 for an event's tags (judged first), 1 for re-checks."""
        self.db.executemany("UPDATE tags SET dirty = MAX(dirty, ?) WHERE repository = ? AND tag = ?",
                            [(level, r, t) for r, t in keys])

    def changes_since(self, seq: int, limit: int = 1000) -> list[tuple[int, Change]]:
        rows = self.db.execute("SELECT seq, at, repository, tag, digest, old_state, new_state, message FROM changes "
                               "WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [(r[0], Change(*r[1:])) for r in rows]

    # -- outbox ---------------------------------------------------------------------------
    def due_alerts(self, now: float, limit: int = 50) -> list[tuple[int, str, str, int]]:
        return self.db.execute("SELECT seq, target, body, attempts FROM outbox WHERE state = 'queued' AND next_at <= ? "
                               "ORDER BY seq LIMIT ?", (now, limit)).fetchall()

    def alert_done(self, seq: int, ok: bool, next_at: float, error: str, give_up: bool) -> None:
        state = "sent" if ok else ("dead" if give_up else "queued")
        self.db.execute("UPDATE outbox SET state = ?, attempts = attempts + 1, next_at = ?, last_error = ? "
                        "WHERE seq = ?", (state, next_at, error[:500], seq))

    def alert_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()}

    # -- meta and counters ----------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def event_count(self) -> int:
        return self._seq

    def counts(self) -> dict[str, Any]:
        events = dict(self.db.execute("SELECT action, COUNT(*) FROM events GROUP BY action").fetchall())
        states = dict(self.db.execute("SELECT state, COUNT(*) FROM tags GROUP BY state").fetchall())
        unapplied = self.db.execute("SELECT COUNT(*) FROM events WHERE applied = 0").fetchone()[0]
        return {"events": self._seq, "events_by_action": events, "tags_by_state": states, "unapplied": unapplied}


def _tag_row(row: Sequence[Any]) -> TagRow:
    return TagRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7] or "[]"), row[8])
