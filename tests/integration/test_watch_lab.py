"""`regaudit watch` on the lab's real registry (variant watch, rgv-): the registry's own notifications.

Pushes go through the real Apache -> nginx -> registry chain from the CI namespace (lab.watchlab);
the watcher runs in the registry namespace on loopback, where the registry's notifications
endpoint points, and reads tags back through the same proxy with the audit's walker. The grace
period is 3 s (a profile extending seed-hardened). Alerts go to a receiver on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lab
import pytest
from lab.watchlab import notifications_sent

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE_SECONDS = 3.0
RECEIVER = """
import http.server, json, sys
out = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 9472), H).serve_forever()
"""


class Watch:
    """The watcher process in the registry namespace, its database, and the alert receiver."""

    def __init__(self, info: lab.LabInfo, tmp: Path) -> None:
        self.info = info
        self.tmp = tmp
        self.db = tmp / "watch.sqlite"
        self.state_dir = tmp / "state"
        raw = info.raw
        base = Path(raw["base_dir"])
        profile = tmp / "watch-profile.yaml"
        profile.write_text("name: watch-lab\nextends: seed-hardened\n"
                           f"params:\n  signatures.present: {{grace_minutes: {GRACE_SECONDS / 60}}}\n")
        self.argv = [sys.executable, "-m", "auditor", "watch", "serve", raw["url"],
                     "--token-file", raw["watch"]["token_file"], "--db", str(self.db), "--profile", str(profile),
                     "--ca-bundle", raw["tls"]["ca"], "--username", raw["auth"]["username"],
                     "--password-file", raw["auth"]["password_file"], "--cosign-key", raw["cosign"]["public_key"],
                     "--scan-dir", raw["scan_dir"], "--recheck-interval", "0.5",
                     "--alert", "webhook=http://127.0.0.1:9472/hook", "--alert", "slack=http://127.0.0.1:9472/slack",
                     "--alert", "alertmanager=http://127.0.0.1:9472"]
        self.env = {**os.environ, "REGAUDIT_STATE_DIR": str(self.state_dir), "PYTHONPATH": str(REPO_ROOT)}
        self.alerts_file = tmp / "alerts.jsonl"
        self.alerts_file.touch()
        self.receiver = subprocess.Popen(["ip", "netns", "exec", info.ns("registry"), sys.executable, "-c", RECEIVER,
                                          str(self.alerts_file)], start_new_session=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lab_json = base / "lab.json"
        del base

    def start(self) -> None:
        log = open(self.tmp / "watch.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.info.ns("registry"), *self.argv], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        wait_for(self.ready, 60, "the watcher to be ready")

    def ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.tmp / "watch.log").read_text()[-3000:]
        return bool(self.health().get("ready")) and self.db.exists()

    def health(self) -> dict[str, Any]:
        out = self.info.run_in("registry", ["curl", "-sf", "http://127.0.0.1:9471/healthz"], timeout=10, check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def metrics(self) -> str:
        return str(self.info.run_in("registry", ["curl", "-sf", "http://127.0.0.1:9471/metrics"], timeout=10).stdout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.receiver.kill()
        self.receiver.wait()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return conn.execute(query, args).fetchall()

    def state(self, repo: str, tag: str) -> str | None:
        rows = self.sql("SELECT state FROM tags WHERE repository = ? AND tag = ?", repo, tag)
        return rows[0][0] if rows else None

    def row(self, repo: str, tag: str) -> dict[str, Any]:
        rows = self.sql("SELECT digest, state, message, findings FROM tags WHERE repository = ? AND tag = ?", repo, tag)
        digest, state, message, findings = rows[0]
        return {"digest": digest, "state": state, "message": message, "findings": json.loads(findings)}

    def changed_at(self, repo: str, tag: str, new_state: str, after: float) -> float | None:
        rows = self.sql("SELECT MIN(at) FROM changes WHERE repository = ? AND tag = ? AND new_state = ? AND at >= ?",
                        repo, tag, new_state, after)
        return rows[0][0]

    def events(self) -> int:
        return int(self.sql("SELECT COUNT(*) FROM events")[0][0])

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.alerts_file.read_text().splitlines() if line.strip()]

    def regaudit(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "auditor", *argv], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)

    def push(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = self.info.run_in("ci", [sys.executable, "-m", "lab.watchlab", str(self.lab_json), "-"],
                               env={"PYTHONPATH": str(REPO_ROOT / "tests")}, timeout=300, input=json.dumps(steps))
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]


def wait_for(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@pytest.fixture(scope="module")
def watch(lab_watch: lab.LabInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watch]:
    w = Watch(lab_watch, tmp_path_factory.mktemp("watch-lab"))
    try:
        w.start()
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
