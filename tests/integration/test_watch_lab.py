"""`regaudit watch` on the lab's real registry (variant watch, rgv-): the registry's own notifications.

Pushes go through the real Apache -> nginx -> registry chain from the CI namespace (lab.watchlab);
the watcher runs in the registry namespace on loopback, where the registry's notifications
endpoint points, and reads tags back through the same proxy with the audit's walker. The grace
period is 3 s (a profile extending seed-hardened). Alerts go to a receiver on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lab
import pytest
from lab.watchlab import Watch, notifications_sent, wait_for

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE_SECONDS = 3.0
@pytest.fixture(scope="module")
def watch(lab_watch: lab.LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watch]:
    w = Watch(lab_watch, tmp_path_factory.mktemp("watch-lab"), GRACE_SECONDS)
    try:
        w.start()
        # events the registry queued while no watcher ran (an earlier session) are delivered first
        wait_for(lambda: notifications_sent(lab_watch)["Pending"] == 0, 300, "the registry's backlog")
        yield w
    finally:
        w.stop()


RUN = str(int(time.time()))
REPO = f"watch/app{RUN}"


def test_an_unsigned_push_turns_failing_after_the_grace_period_and_raises_alerts(watch: Watch) -> None:
    (pushed,) = watch.push([{"op": "push", "repo": REPO, "tag": "v1", "seed": f"{RUN}-1"}])
    digest = pushed["digest"]
    wait_for(lambda: watch.state(REPO, "v1") == "pending", 10, "the push to start the tag's clock")
    watch.push([{"op": "scan", "repo": REPO, "tag": "v1", "digest": digest, "seed": f"{RUN}-1"}])
    failed_at = wait_for(lambda: watch.changed_at(REPO, "v1", "fail", pushed["done_at"]), 30, "fail after the grace")
    assert failed_at - pushed["done_at"] >= GRACE_SECONDS - 0.5
    row = watch.row(REPO, "v1")
    assert [f["check"] for f in row["findings"] if f["status"] == "fail"] == ["signatures.present"]
    def all_three() -> list[dict[str, Any]] | None:
        found = [a for a in watch.alerts() if REPO in json.dumps(a)]
        return found if {a["path"] for a in found} == {"/hook", "/slack", "/api/v2/alerts"} else None

    alerts = wait_for(all_three, 30, "an alert at each of the three targets")
    hook = next(a["body"] for a in alerts if a["path"] == "/hook")
    assert (hook["status"], hook["subject"], hook["digest"]) == ("firing", f"{REPO}:v1", digest)
    am = next(a["body"] for a in alerts if a["path"] == "/api/v2/alerts")[0]
    assert am["labels"]["alertname"] == "RegauditTagNoncompliant" and am["labels"]["tag"] == "v1" and "endsAt" not in am
    metrics = watch.metrics()
    assert f'regaudit_watch_tag_state{{repository="{REPO}",state="fail",tag="v1"}} 1.0' in metrics
    status = watch.regaudit("watch", "status", "--db", str(watch.db))
    assert status.returncode == 1 and f"{REPO}:v1" in status.stdout and "fail" in status.stdout
    history = wait_for(lambda: _history_has(watch, f"{REPO}:v1"), 20, "the failing tag in the audit history")
    assert "signatures.present" in history


def _history_has(watch: Watch, subject: str) -> str | None:
    """`regaudit diff` from the watcher's first history run to its latest names the failing tag."""
    runs = watch.regaudit("history", "--format", "json")
    if runs.returncode != 0 or not runs.stdout.strip():
        return None
    found = json.loads(runs.stdout)
    found = found.get("runs", found) if isinstance(found, dict) else found
    if len(found) < 2:
        return None
    diff = watch.regaudit("diff", found[-1]["run_id"], found[0]["run_id"], "--format", "json")
    return diff.stdout if subject in diff.stdout else None


def test_signing_clears_the_tag_within_a_second(watch: Watch) -> None:
    if watch.state(REPO, "v1") != "fail":
        pytest.skip("needs the failing tag of the previous test")
    digest = watch.row(REPO, "v1")["digest"]
    (signed,) = watch.push([{"op": "sign", "repo": REPO, "tag": "v1", "digest": digest}])
    passed_at = wait_for(lambda: watch.changed_at(REPO, "v1", "pass", signed["done_at"] - 1), 10, "the pass verdict")
    lag = passed_at - signed["done_at"]
    print(f"signature push -> pass: {lag * 1000:.0f} ms")
    assert lag < 1.0
    resolved = wait_for(lambda: [a for a in watch.alerts() if a["path"] == "/hook" and a["body"]["subject"] ==
                                 f"{REPO}:v1" and a["body"]["status"] == "resolved"], 20, "the resolved alert")
    assert resolved[0]["body"]["state"] == "pass"
    assert f'regaudit_watch_tag_state{{repository="{REPO}",state="pass",tag="v1"}} 1.0' in watch.metrics()


def test_a_repush_invalidates_the_old_scan_at_the_push(watch: Watch) -> None:
    old = watch.row(REPO, "v1")["digest"]
    (pushed,) = watch.push([{"op": "push", "repo": REPO, "tag": "v1", "seed": f"{RUN}-rebuilt"}])
    assert pushed["digest"] != old

    def caught() -> dict[str, Any] | None:
        row = watch.row(REPO, "v1")
        checks = {f["check"] for f in row["findings"]}
        return row if row["digest"] == pushed["digest"] and "scans.digest-match" in checks else None

    row = wait_for(caught, 5, "the stale scan to be caught")
    assert row["state"] == "pending"  # inside the grace period: the rebuilt image must be scanned and signed
    stale = next(f for f in row["findings"] if f["check"] == "scans.digest-match")
    assert old in stale["message"] or "digest" in stale["message"]
    changes = watch.sql("SELECT message FROM changes WHERE repository = ? AND tag = 'v1' AND new_state = 'pending' "
                        "ORDER BY seq DESC LIMIT 1", REPO)
    assert "no longer count" in changes[0][0]


def test_a_delete_retires_the_tag(watch: Watch) -> None:
    digest = watch.row(REPO, "v1")["digest"]
    (deleted,) = watch.push([{"op": "delete", "repo": REPO, "digest": digest}])
    assert deleted["status"] == 202
    wait_for(lambda: watch.state(REPO, "v1") == "retired", 10, "the tag to be retired")
    assert f'repository="{REPO}",state="pass",tag="v1"' not in watch.metrics()


def test_kill_9_mid_stream_loses_no_event(watch: Watch) -> None:
    before_sent = notifications_sent(watch.info)
    before_events = watch.events()
    stream = subprocess.Popen(
        ["ip", "netns", "exec", watch.info.ns("ci"), sys.executable, "-m", "lab.watchlab", str(watch.lab_json), "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests")})
    assert stream.stdin is not None
    stream.stdin.write(json.dumps([{"op": "stream", "repo": f"{REPO}-stream", "count": 30, "sign": True,
                                    "concurrency": 4}]).encode())
    stream.stdin.close()
    for _ in range(2):
        wait_for(lambda: watch.events() > before_events + 10, 60, "events to flow")
        watch.kill9()
        time.sleep(0.5)
        watch.start()
    assert stream.wait(300) == 0
    wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 120, "the registry to deliver every event")
    sent = notifications_sent(watch.info)
    delivered = sent["Successes"] - before_sent["Successes"]
    queued = sent["Events"] - before_sent["Events"]
    stored = watch.events() - before_events
    print(f"registry queued {queued}, delivered {delivered}; watcher stored {stored} distinct events")
    assert delivered == queued and stored == delivered  # nothing lost, nothing counted twice
    wait_for(lambda: not watch.sql("SELECT 1 FROM events WHERE applied = 0"), 30, "every event applied")
    rows = watch.sql("SELECT tag, state FROM tags WHERE repository = ?", f"{REPO}-stream")
    assert len(rows) == 30 and all(state in ("pending", "fail") for _, state in rows)  # signed, no scan yet
