"""The watcher: the HTTP intake (aiohttp) and its background loops.

Intake (`POST /events`): the Authorization header is compared in constant time before the body
is read (401, nothing stored, otherwise); the content type must be distribution's events type
(415); the body is bounded (`max_body`, 413) and must parse as an envelope (400); requests beyond
`max_inflight` get 503 with Retry-After (backpressure: the registry retries). Accepted events are
committed to the store (one fsync'd transaction for every request waiting at that moment) before
the 200 answer. `GET /metrics` is the Prometheus exposition, `GET /healthz` a liveness answer.

Loops: apply stored events to tag state (pushes start clocks, deletes retire tags, signature and
attestation pushes mark their subject), judge dirty tags with the engine (`judge.ContentJudge`),
re-judge pending tags (their scan may have been written; their grace may have run out),
reconcile with a full content walk at start and every `reconcile_interval`, deliver alerts,
and record verdict changes into the audit history.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from .alerts import AlertSender, AlertTarget, outbox_rows
from .events import MEDIA_TYPES, EnvelopeError, Event, parse_envelope
from .judge import ContentJudge
from .store import Store, Verdict

log = logging.getLogger(__name__)
T = TypeVar("T")
JUDGE_BATCH = 64
GONE_WINDOW = 60.0   # seconds after a push in which a 404 for the tag is taken as "not linked yet"
RETRY_GONE = 0.2     # ... and the tag is judged again this much later


@dataclass
class WatchConfig:
    """Everything `regaudit watch serve` was told."""

    db_path: Path
    token: str
    registry: str                       # how the registry is named in alerts and history
    listen_host: str = "127.0.0.1"
    listen_port: int = 9471
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body: int = 1024 * 1024
    max_inflight: int = 64
    max_queue: int = 20000              # events accepted but not yet applied before 503
    grace: float = 600.0
    recheck_interval: float = 5.0
    failing_recheck_interval: float = 60.0
    reconcile_interval: float = 3600.0
    reconcile_at_start: bool = True
    alert_targets: list[AlertTarget] = field(default_factory=list)
    history_dir: Path | None = None
    history_target: str = ""
    profile_name: str = ""
    scan_dir: str | None = None


@dataclass
class Stats:
    duplicates: int = 0
    applied: int = 0
    judgements: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    lag_sum: float = 0.0
    lag_count: int = 0

    def lag(self, seconds: float) -> None:
        self.lags.append(seconds)
        self.lag_sum += seconds
        self.lag_count += 1

    def to_json(self) -> dict[str, Any]:
        return {"duplicates": self.duplicates, "applied": self.applied, "judgements": self.judgements,
                "rejected": dict(self.rejected), "lags": list(self.lags), "lag_sum": self.lag_sum,
                "lag_count": self.lag_count}


class Watcher:
    def __init__(self, config: WatchConfig, judge: ContentJudge) -> None:
        self.config = config
        self.judge = judge
        self.stats = Stats()
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watch-db")
        self.store = Store(config.db_path)
        self._intake: list[tuple[list[Event], asyncio.Future[int]]] = []
        self._intake_wake = asyncio.Event()
        self._apply_wake = asyncio.Event()
        self._judge_wake = asyncio.Event()
        self._history_wake = asyncio.Event()
        self._inflight = 0
        self._queued_events = 0
        self._received_at: dict[tuple[str, str], float] = {}
        self._expected = ("Bearer " + config.token).encode()
        self.alerts = AlertSender(self.run_db, self.store, config.alert_targets)
        self._alert_rows = outbox_rows(config.alert_targets, config.registry)
        self._tasks: list[asyncio.Task[Any]] = []
        self._pending_marks: set[asyncio.Future[Any]] = set()
        self._gone_tries: dict[tuple[str, str], int] = {}
        self._scan_stamps: list[int] = self._ignore_stamps()  # the walk at start judges with these
        self.ready = asyncio.Event()

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    # -- HTTP -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body)
        app.router.add_post("/events", self.handle_events)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_health)
        return app

    def authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._expected)

    async def handle_events(self, request: web.Request) -> web.Response:
        if not self.authorised(request):
            self.stats.rejected["unauthorised"] += 1
            return web.json_response({"error": "unauthorised"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="regaudit-watch"'})
        if request.content_type not in MEDIA_TYPES:
            self.stats.rejected["media_type"] += 1
            return web.json_response({"error": f"unsupported media type {request.content_type!r}"}, status=415)
        if request.content_length is not None and request.content_length > self.config.max_body:
            self.stats.rejected["too_large"] += 1
            return web.json_response({"error": "body too large"}, status=413)
        if self._inflight >= self.config.max_inflight or self._queued_events >= self.config.max_queue:
            self.stats.rejected["busy"] += 1
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "1"})
        self._inflight += 1
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                self.stats.rejected["too_large"] += 1
                return web.json_response({"error": "body too large"}, status=413)
            try:
                events = parse_envelope(body)
            except EnvelopeError as exc:
                self.stats.rejected["malformed"] += 1
                return web.json_response({"error": str(exc)}, status=400)
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._intake.append((events, future))
            self._intake_wake.set()
            new = await future
        finally:
            self._inflight -= 1
        return web.json_response({"received": len(events), "stored": new})

    async def handle_metrics(self, request: web.Request) -> web.Response:
        from .metrics import render

        snapshot = await self.run_db(self._snapshot)
        return web.Response(body=render(snapshot), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "ready": self.ready.is_set()})

    def _snapshot(self) -> dict[str, Any]:
        return {"tags": self.store.tags(), "counts": self.store.counts(), "stats": self.stats.to_json(),
                "reconciliation": self.store.meta("reconciliation", {}), "alerts": self.store.alert_counts()}

    # -- loops ----------------------------------------------------------------------------
    async def intake_loop(self) -> None:
        while True:
            await self._intake_wake.wait()
            self._intake_wake.clear()
            batch, self._intake = self._intake, []
            if not batch:
                continue
            try:
                counts = await self.run_db(self.store.ingest, [events for events, _ in batch], time.time())
            except Exception as exc:  # the disk refused: every waiting request gets 5xx, the registry retries
                log.error("intake write failed: %s", exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(web.HTTPServiceUnavailable(text="store write failed"))
                continue
            for (events, future), new in zip(batch, counts, strict=True):
                self.stats.duplicates += len(events) - new
                self._queued_events += new
                if not future.done():
                    future.set_result(new)
            self._apply_wake.set()

    async def apply_loop(self) -> None:
        while True:
            rows = await self.run_db(self.store.unapplied)
            if not rows:
                self._apply_wake.clear()
                await self._apply_wake.wait()
                continue
            keys = await self.run_db(self._apply, rows)
            self.stats.applied += len(rows)
            self._queued_events = max(0, self._queued_events - len(rows))
            now = time.time()
            for key in keys:
                self._received_at.setdefault(key, now)
            if keys:
                self._judge_wake.set()

    def _apply(self, rows: list[Any]) -> set[tuple[str, str]]:
        keys = self.store.apply(rows, time.time())
        received = {(r["repository"], r["tag"]): r["received_at"] for r in rows if r["tag"]}
        for key in keys:
            if key in received:
                self._received_at.setdefault(key, received[key])
        return keys

    async def judge_loop(self) -> None:
        while True:
            keys = await self.run_db(self.store.dirty, JUDGE_BATCH)  # events' tags first, one batch at a time
            if not keys:
                self._judge_wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._judge_wake.wait(), 1.0)
                continue
            await self.judge_keys(keys)

    async def judge_keys(self, keys: list[tuple[str, str]]) -> None:
        try:
            verdicts = await self.judge.judge(keys)
        except Exception as exc:
            log.warning("judging %d tag(s) failed: %s", len(keys), exc)
            verdicts = {k: Verdict("", "error", f"could not judge: {type(exc).__name__}: {exc}") for k in keys}
            await asyncio.sleep(1.0)
            await self.run_db(self._record_errors, verdicts)
            return
        self.stats.judgements += len(verdicts)
        gone = [k for k, v in verdicts.items() if v.state == "gone"]
        judged = [(r, t, v) for (r, t), v in verdicts.items() if v.state != "gone"]
        changes, retry = await self.run_db(self._record, judged, gone)
        for key in retry:  # 0.2 s, then doubling up to 5 s
            tries = self._gone_tries[key] = self._gone_tries.get(key, 0) + 1
            asyncio.get_running_loop().call_later(min(5.0, RETRY_GONE * 2 ** (tries - 1)), self._mark_later, [key])
        for key in verdicts:
            if key not in retry:
                self._gone_tries.pop(key, None)
        now = time.time()
        for key in keys:
            if key in retry:
                continue
            received = self._received_at.pop(key, None)
            if received is not None:
                self.stats.lag(now - received)
        if changes:
            self.alerts.wake.set()
            self._history_wake.set()

    def _record(self, judged: list[tuple[str, str, Verdict]],
                gone: list[tuple[str, str]]) -> tuple[list[Any], list[tuple[str, str]]]:
        """Store verdicts. A tag the registry answers 404 for is not retired on that answer alone:
        the registry sends a manifest's push event before it writes the tag's link, so a tag pushed
        in the last GONE_WINDOW seconds is judged again shortly; an older one is `error` until a
        delete event or the reconciliation walk retires it. Returns (changes, tags to retry)."""
        now = time.time()
        retry = []
        for repo, tag in gone:
            row = self.store.tag(repo, tag)
            if row is None or row.state == "retired":
                continue
            if now - row.pushed_at < GONE_WINDOW:
                retry.append((repo, tag))
                self.store.db.execute("UPDATE tags SET dirty = 0 WHERE repository = ? AND tag = ?", (repo, tag))
            else:
                judged.append((repo, tag, Verdict(row.digest, "error", "the registry answers 404 for this tag "
                                                  "(deleted without a delete event?): the reconciliation walk "
                                                  "will retire it")))
        return self.store.record_verdicts(judged, self.config.grace, now, self._alert_rows), retry

    def _mark_later(self, keys: list[tuple[str, str]]) -> None:
        async def mark() -> None:
            await self.run_db(self.store.mark_dirty, keys, 2)
            self._judge_wake.set()
        task = asyncio.ensure_future(mark())
        self._pending_marks.add(task)
        task.add_done_callback(self._pending_marks.discard)

    def _record_errors(self, verdicts: dict[tuple[str, str], Verdict]) -> None:
        rows = []
        for (repo, tag), verdict in verdicts.items():
            row = self.store.tag(repo, tag)
            if row is not None:
                rows.append((repo, tag, Verdict(row.digest, "error", verdict.message)))
        self.store.record_verdicts(rows, self.config.grace, time.time(), self._alert_rows)
        self.store.mark_dirty(verdicts, 1)

    async def recheck_loop(self) -> None:
        """Re-judge what no event announces: a grace period running out, a scan report written, the
        ignore files or the scan directory changing, and failing tags every failing_recheck_interval."""
        last_failing = time.time()
        while True:
            await asyncio.sleep(self.config.recheck_interval)
            now = time.time()
            everything = await asyncio.to_thread(self._scan_dir_changed)
            failing_too = everything or now - last_failing >= self.config.failing_recheck_interval
            if failing_too:
                last_failing = now
            marked = await self.run_db(self.store.recheck, now, self.config.grace, self.config.scan_dir, failing_too)
            if marked:
                self._judge_wake.set()

    def _ignore_stamps(self) -> list[int]:
        stamps = []
        for name in (".trivyignore", ".trivyignore.yaml", ".trivyignore.yml"):
            try:
                stamps.append(os.stat(os.path.join(self.config.scan_dir or "", name)).st_mtime_ns)
            except OSError:
                stamps.append(0)
        return stamps

    def _scan_dir_changed(self) -> bool:
        """Whether the scan directory's ignore files changed (every verdict may then change)."""
        if not self.config.scan_dir:
            return False
        stamps = self._ignore_stamps()
        changed, self._scan_stamps = stamps != self._scan_stamps, stamps
        return changed

    async def reconcile_loop(self) -> None:
        first = True
        while True:
            if not first or self.config.reconcile_at_start:
                await self.reconcile()
            first = False
            self.ready.set()
            await asyncio.sleep(self.config.reconcile_interval)

    async def reconcile(self) -> dict[str, Any]:
        started = time.time()
        try:
            verdicts, info = await self.judge.walk()
        except Exception as exc:
            log.warning("reconciliation failed: %s", exc)
            info = {"at": started, "error": str(exc)}
            await self.run_db(self.store.set_meta, "reconciliation", info)
            return info
        summary = await self.run_db(self._reconcile, verdicts, started)
        info.update(summary, at=time.time())
        await self.run_db(self.store.set_meta, "reconciliation", info)
        self.alerts.wake.set()
        self._history_wake.set()
        return info

    def _reconcile(self, verdicts: dict[tuple[str, str], Verdict], started: float) -> dict[str, Any]:
        store = self.store
        first = store.meta("reconciliation") is None and store.event_count() == 0 and not store.tags()
        found = retired = 0
        store.db.execute("BEGIN IMMEDIATE")
        try:
            for (repo, tag), verdict in verdicts.items():
                row = store.tag(repo, tag)
                if row is not None and row.pushed_at > started:
                    continue  # pushed while the walk ran: the event's judgement wins
                if row is None or row.state == "retired" or row.digest != verdict.digest:
                    # first start: existing tags were pushed long ago, no grace; later: the clock starts now
                    store.note_push(repo, tag, verdict.digest, started - self.config.grace if first else started,
                                    "found by reconciliation")
                    found += 1
            for row in store.tags():
                if (row.repository, row.tag) not in verdicts and row.pushed_at <= started:
                    store.retire(row.repository, row.tag, time.time(), "not in the registry at reconciliation")
                    retired += 1
            store.db.execute("COMMIT")
        except BaseException:
            store.db.execute("ROLLBACK")
            raise
        changes = store.record_verdicts([(r, t, v) for (r, t), v in verdicts.items()], self.config.grace,
                                        time.time(), self._alert_rows)
        return {"found": found, "retired": retired, "changes": len(changes)}

    async def history_loop(self) -> None:
        from .history import record_snapshot

        while True:
            await self._history_wake.wait()
            self._history_wake.clear()
            if not self.config.history_target:
                continue
            try:
                await self.run_db(record_snapshot, self.store, self.config)
            except Exception as exc:
                log.warning("recording the watch state into the audit history failed: %s", exc)
            await asyncio.sleep(2.0)  # at most one history run per 2 s

    # -- lifecycle ------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Signal handlers need a Unix event loop in the main thread (NotImplementedError
            # elsewhere, RuntimeError off the main thread, as in tests): then `stop` ends the service.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.listen_host, self.config.listen_port,
                           ssl_context=self.ssl_context(), backlog=512)
        for loop_fn in (self.intake_loop, self.apply_loop, self.judge_loop, self.recheck_loop,
                        self.reconcile_loop, self.alerts.run, self.history_loop):
            self._tasks.append(asyncio.create_task(self._guard(loop_fn), name=loop_fn.__name__))
        await site.start()
        log.info("regaudit watch listening on %s:%d", self.config.listen_host, self.config.listen_port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.judge.aclose()
            self._db_thread.submit(self.store.close).result()
            self._db_thread.shutdown()

    async def _guard(self, fn: Callable[[], Any]) -> None:
        """A loop that crashes is logged and restarted: intake must keep running."""
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch loop %s crashed; restarting in 1s", getattr(fn, "__name__", fn))
                await asyncio.sleep(1.0)
