"""The watcher's store: dedup by event id, pushes start the clock, grace, re-push, delete, outbox."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from auditor.watch.events import parse_envelope
from auditor.watch.store import Store, Verdict

from .test_watch_events import DIGEST, OTHER, envelope, event

GRACE = 600.0


def applied(store: Store, *events: dict, at: float = 1000.0) -> set[tuple[str, str]]:
    store.ingest([parse_envelope(envelope(*events))], at)
    return store.apply(store.unapplied(), at)


def test_a_retried_delivery_is_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    body = parse_envelope(envelope(event(event_id="x1"), event(event_id="x2", tag="v2")))
    assert store.ingest([body], 1.0) == [2]
    assert store.ingest([body, body], 2.0) == [0, 0]
    assert store.event_count() == 2
    store.close()
    assert Store(tmp_path / "w.sqlite").event_count() == 2  # the count survives a reopen


def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_unsigned_push_is_pending_inside_the_grace_period_then_fails(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    assert applied(store, event()) == {("team/app", "v1")}
    assert store.tag("team/app", "v1").state == "pending"
    unsigned = Verdict(DIGEST, "fail", "signatures.present: unsigned")
    assert store.record_verdicts([("team/app", "v1", unsigned)], GRACE, 1000.0 + 5) == []
    changes = store.record_verdicts([("team/app", "v1", unsigned)], GRACE, 1000.0 + GRACE + 1)
    assert [(c.old_state, c.new_state) for c in changes] == [("pending", "fail")]
    row = store.tag("team/app", "v1")
    assert (row.state, row.since) == ("fail", 1000.0 + GRACE + 1)


def test_a_signature_push_rejudges_its_subject_and_a_pass_is_immediate(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    applied(store, event())
    store.record_verdicts([("team/app", "v1", Verdict(DIGEST, "pass", "ok"))], GRACE, 1001.0)
    assert store.tag("team/app", "v1").state == "pass"
    keys = applied(store, event(event_id="s1", tag=f"sha256-{'a' * 64}.sig", digest="sha256:" + "c" * 64))
    assert keys == {("team/app", "v1")}
    assert store.dirty() == [("team/app", "v1")]


def test_a_repush_restarts_the_clock_and_drops_verdicts_of_the_old_digest(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    applied(store, event())
    store.record_verdicts([("team/app", "v1", Verdict(DIGEST, "pass", "ok"))], GRACE, 1001.0)
    applied(store, event(event_id="e2", digest=OTHER), at=2000.0)
    row = store.tag("team/app", "v1")
    assert (row.state, row.digest, row.pushed_at) == ("pending", OTHER, 2000.0)
    assert "no longer count" in row.message
    # a late verdict for the old digest is dropped
    assert store.record_verdicts([("team/app", "v1", Verdict(DIGEST, "pass", "old"))], GRACE, 2001.0) == []
    assert store.tag("team/app", "v1").state == "pending"


def test_deletes_retire_tags(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    applied(store, event(), event(event_id="e2", tag="v2"), event(event_id="e3", tag="v3", digest=OTHER))
    applied(store, event(event_id="d1", action="delete", tag="", media=""))
    states = {r.tag: r.state for r in store.tags(("pending", "retired"))}
    assert states == {"v1": "retired", "v2": "retired", "v3": "pending"}
    applied(store, event(event_id="d2", action="delete", tag="v3", media="", digest=""))
    assert store.tag("team/app", "v3").state == "retired"
    assert [c.new_state for _, c in store.changes_since(0)][-1] == "retired"


def test_alerts_are_queued_with_their_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.sqlite")
    applied(store, event())
    store.record_verdicts([("team/app", "v1", Verdict(DIGEST, "fail", "unsigned"))], 0.0, 1001.0,
                          alert=lambda change, old: [("webhook=http://x", json.dumps({"s": change.new_state}))])
    (due,) = store.due_alerts(1002.0)
    assert due[1] == "webhook=http://x" and json.loads(due[2]) == {"s": "fail"}
    store.alert_done(due[0], False, 1010.0, "HTTP 500", give_up=False)
    assert store.due_alerts(1005.0) == [] and len(store.due_alerts(1011.0)) == 1


def test_a_writer_killed_mid_transaction_loses_nothing_committed(tmp_path: Path) -> None:
    """kill -9 between commits: committed events are all there, the open transaction is gone."""
    db = tmp_path / "w.sqlite"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from auditor.watch.store import Store
        from auditor.watch.events import parse_envelope
        import json
        store = Store(__import__('pathlib').Path({str(db)!r}))
        def body(i):
            return parse_envelope(json.dumps({{"events": [{{"id": f"e{{i}}", "action": "push", "target": {{}}}}]}}).encode())
        for i in range(50):
            store.ingest([body(i)], 1.0)
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute("INSERT INTO events VALUES ('half', 999, 1, '', 'push', '', '', '', '', '', 'ignored', '', 0)")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    conn = sqlite3.connect(db)
    ids = {r[0] for r in conn.execute("SELECT id FROM events")}
    assert ids == {f"e{i}" for i in range(50)}


def test_the_registry_config_generator_adds_the_watch_endpoint() -> None:
    import yaml

    from auditor.remediation import registry_config
    from auditor.remediation.plan import mask_secrets

    config = {"version": 0.1, "notifications": {"endpoints": [{"name": "other", "url": "https://o.example/e"}]}}
    merged, changes = registry_config.harden(config, None, fix_readonly=False,
                                             watch=("http://127.0.0.1:9471/events", "s3cret-token-0123456789"))
    endpoints = merged["notifications"]["endpoints"]
    assert endpoints[0] == {"name": "other", "url": "https://o.example/e"}  # other endpoints kept
    ours = endpoints[1]
    assert ours["name"] == "regaudit-watch" and ours["url"] == "http://127.0.0.1:9471/events"
    assert ours["headers"] == {"Authorization": ["Bearer s3cret-token-0123456789"]}
    assert (ours["timeout"], ours["threshold"], ours["backoff"]) == ("2s", 3, "1s")
    assert ours["ignore"] == {"actions": ["pull"]} and ours["ignoredmediatypes"] == ["application/octet-stream"]
    assert merged["notifications"]["events"] == {"includereferences": True}
    assert not any("s3cret" in c for c in changes)
    shown = mask_secrets("".join(f"+{line}\n" for line in yaml.safe_dump(merged).splitlines()))
    assert "s3cret" not in shown and "Bearer [redacted]" in shown
    again, more = registry_config.harden(merged, None, fix_readonly=False,
                                         watch=("http://127.0.0.1:9471/events", "s3cret-token-0123456789"))
    assert again["notifications"] == merged["notifications"]
    assert not [c for c in more if c.startswith("notifications")]  # idempotent


def test_verdict_changes_land_in_the_audit_history_and_its_trend(tmp_path: Path) -> None:
    from auditor import history
    from auditor.watch.history import record_snapshot
    from auditor.watch.service import WatchConfig

    store = Store(tmp_path / "w.sqlite")
    applied(store, event(), event(event_id="e2", tag="v2"))
    failing = Verdict(DIGEST, "fail", "signatures.present: unsigned",
                      [{"check": "signatures.present", "status": "fail", "severity": "high", "message": "unsigned"}])
    store.record_verdicts([("team/app", "v1", failing), ("team/app", "v2", Verdict(DIGEST, "pass", "ok"))],
                          0.0, 1001.0)
    config = WatchConfig(db_path=tmp_path / "w.sqlite", token="x" * 16, registry="https://r.example",
                         history_dir=tmp_path / "state", history_target="https://r.example", profile_name="p")
    first = record_snapshot(store, config)
    store.record_verdicts([("team/app", "v1", Verdict(DIGEST, "pass", "signed"))], 0.0, 1002.0)
    second = record_snapshot(store, config)
    trend = history.trend({"url": "https://r.example"}, directory=tmp_path / "state")
    assert [r["run_id"] for r in trend] == [first, second]
    assert (trend[0]["failing"], trend[0]["score"], trend[1]["failing"], trend[1]["score"]) == (1, 50.0, 0, 100.0)
    changed = history.diff(first, second, directory=tmp_path / "state")
    assert any(row["subject"] == "team/app:v1" and row["check"] == "signatures.present"
               for rows in changed.values() for row in rows)
