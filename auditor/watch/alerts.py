"""Alerts when a tag turns failing (and when it recovers), to Alertmanager, a JSON webhook, Slack.

Alerts are queued in the store's outbox in the same transaction as the verdict change, then sent
by `AlertSender` (its own task: intake never waits on a receiver). A failed delivery is retried
with exponential backoff (1 s doubling to 5 min) up to `max_attempts`; a receiver that is down
loses nothing while the watcher runs or restarts.

Target forms (`--alert KIND=URL`): `alertmanager=http://am:9093` (POSTs `/api/v2/alerts`),
`webhook=https://hooks.example/x` (the change as JSON), `slack=https://hooks.slack.com/...`
(`{"text": ...}`, which Mattermost and Rocket.Chat accept too).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditor.errors import UsageError

from .store import Change, TagRow

log = logging.getLogger(__name__)
KINDS = ("alertmanager", "webhook", "slack")
ALERT_NAME = "RegauditTagNoncompliant"
ALERTING = ("fail", "error")


@dataclass(frozen=True)
class AlertTarget:
    kind: str
    url: str

    @property
    def post_url(self) -> str:
        return self.url.rstrip("/") + "/api/v2/alerts" if self.kind == "alertmanager" else self.url

    def describe(self) -> str:
        return f"{self.kind}={self.url}"


def parse_target(text: str) -> AlertTarget:
    kind, sep, url = text.partition("=")
    if not sep or kind not in KINDS or not url.startswith(("http://", "https://")):
        raise UsageError(f"--alert {text!r}: expected KIND=URL with KIND one of {', '.join(KINDS)} and an http(s) URL")
    return AlertTarget(kind, url)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def should_alert(change: Change) -> bool:
    """A tag turning failing fires; one leaving fail/error (pass, retired, re-pushed) resolves."""
    return change.new_state in ALERTING or change.old_state in ALERTING


def body_for(target: AlertTarget, change: Change, registry: str, old: TagRow) -> str:
    firing = change.new_state in ALERTING
    subject = f"{change.repository}:{change.tag}"
    summary = (f"{subject} is {change.new_state} since {_iso(change.at)}" if firing
               else f"{subject} is no longer failing ({change.new_state})")
    if target.kind == "alertmanager":
        alert: dict[str, Any] = {
            "labels": {"alertname": ALERT_NAME, "registry": registry, "repository": change.repository,
                       "tag": change.tag, "severity": "high"},
            "annotations": {"summary": summary, "description": change.message[:2000], "digest": change.digest},
            "startsAt": _iso(change.at if firing else old.since),
        }
        if not firing:
            alert["endsAt"] = _iso(change.at)
        return json.dumps([alert])
    if target.kind == "slack":
        icon = ":rotating_light:" if firing else ":white_check_mark:"
        return json.dumps({"text": f"{icon} regaudit: {summary}\n{change.message[:1500]}"})
    return json.dumps({"source": "regaudit-watch", "registry": registry, "status": "firing" if firing else "resolved",
                       "subject": subject, "repository": change.repository, "tag": change.tag,
                       "digest": change.digest, "state": change.new_state, "previous_state": change.old_state,
                       "at": _iso(change.at), "message": change.message})


def outbox_rows(targets: list[AlertTarget], registry: str) -> Callable[[Change, TagRow], list[tuple[str, str]]]:
    def rows(change: Change, old: TagRow) -> list[tuple[str, str]]:
        if not should_alert(change):
            return []
        return [(t.describe(), body_for(t, change, registry, old)) for t in targets]
    return rows


class AlertSender:
    """Delivers queued alerts; `run_db(fn, *args)` runs a store call on the store's thread."""

    def __init__(self, run_db: Callable[..., Any], store: Any, targets: list[AlertTarget],
                 max_attempts: int = 20, timeout: float = 5.0) -> None:
        self.run_db = run_db
        self.store = store
        self.targets = {t.describe(): t for t in targets}
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.wake = asyncio.Event()
        self.sent = 0
        self.failed_attempts = 0

    async def run(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False, follow_redirects=False) as client:
            while True:
                due = await self.run_db(self.store.due_alerts, time.time())
                for seq, target_name, body, attempts in due:
                    await self._send(client, seq, target_name, body, attempts)
                if not due:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), 1.0)

    async def _send(self, client: Any, seq: int, target_name: str, body: str, attempts: int) -> None:
        target = self.targets.get(target_name)
        if target is None:  # configuration changed since it was queued
            await self.run_db(self.store.alert_done, seq, False, time.time(), "target no longer configured", True)
            return
        error = ""
        try:
            response = await client.post(target.post_url, content=body.encode(),
                                         headers={"Content-Type": "application/json"})
            ok = 200 <= response.status_code < 300
            error = "" if ok else f"HTTP {response.status_code}"
        except Exception as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        delay = min(300.0, 2.0 ** attempts)
        give_up = not ok and attempts + 1 >= self.max_attempts
        if ok:
            self.sent += 1
        else:
            self.failed_attempts += 1
            log.warning("alert to %s failed (%s); retry in %.0fs", target_name, error, delay)
        await self.run_db(self.store.alert_done, seq, ok, time.time() + delay, error, give_up)
