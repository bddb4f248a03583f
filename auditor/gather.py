"""Gathering evidence: every needed probe runs once, concurrently, under a deadline."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from auditor.checkapi import ProbeRecord
from auditor.errors import NotApplicable, ProbeError, ProbeUnavailable
from auditor.model import JSON
from auditor.probeapi import Probe, ProbeContext

if TYPE_CHECKING:
    import httpx

    from auditor.credentials import Credentials
    from auditor.target import Target

log = logging.getLogger(__name__)
_chain: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("probe_chain", default=())
ProgressFn = Callable[[str, ProbeRecord], None]
T = TypeVar("T")


def run_main(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, with the result handed over outside the main task.

    On its way out asyncio.run restores the SIGINT handler, and looking that handler up formats a
    repr of the main task, result included: for the evidence of 10,000 tags a quarter of a second
    spent on text nobody reads. A task that returns None is formatted in microseconds."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]


class Gatherer:
    """Runs probes on demand, memoised: each probe's task is created once and shared."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        target: Target,
        credentials: Credentials | None,
        deadline_seconds: float,
        progress: ProgressFn | None = None,
    ) -> None:
        self.probes = probes
        self.target = target
        self.credentials = credentials
        self.deadline_seconds = deadline_seconds
        self.progress = progress
        self.records: dict[str, ProbeRecord] = {}
        self._tasks: dict[str, asyncio.Task[ProbeRecord]] = {}
        self._client: httpx.AsyncClient | None = None
        self._deadline = 0.0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            from auditor.httpclient import make_client  # not imported by inside-only gathering (the zipapp)

            self._client = make_client(ca_bundle=self.target.path("ca_bundle"))
        return self._client

    async def gather(self, names: Iterable[str]) -> dict[str, ProbeRecord]:
        """Gather `names` (and what they depend on); never raises for a probe's failure."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.deadline_seconds
        wanted = sorted(set(names))
        tasks = [self._task(name) for name in wanted]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=self.deadline_seconds)
        finally:
            for name, task in list(self._tasks.items()):
                if not task.done():
                    task.cancel()
                    self._record(
                        ProbeRecord(name, "error", reason=f"audit deadline of {self.deadline_seconds:g}s exceeded")
                    )
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()
                self._client = None
        return dict(self.records)

    def _task(self, name: str) -> asyncio.Task[ProbeRecord]:
        task = self._tasks.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(name), name=f"probe:{name}")
            self._tasks[name] = task
        return task

    async def _fetch(self, name: str) -> JSON:
        if name not in self.probes:
            raise ProbeError(f"no probe named {name} is installed")
        chain = _chain.get()
        if name in chain:
            raise ProbeUnavailable(name, f"dependency cycle: {' -> '.join([*chain, name])}")
        record = await asyncio.shield(self._task(name))
        if record.state == "ok":
            return record.value
        if record.state == "not_applicable":
            raise NotApplicable(record.reason)
        raise ProbeError(f"needs {name}, which failed: {record.reason}")

    async def _run(self, name: str) -> ProbeRecord:
        started = time.monotonic()
        probe = self.probes.get(name)
        if probe is None:
            return self._record(ProbeRecord(name, "error", reason="no such probe is installed"))
        _chain.set((*_chain.get(), name))
        ctx = ProbeContext(self.target, self.credentials, self._fetch, self._http, self._deadline)
        remaining = max(0.0, self._deadline - asyncio.get_running_loop().time())
        limit = min(probe.timeout, remaining)
        try:
            value = await asyncio.wait_for(probe.fn(ctx), timeout=limit)
            json.dumps(value)
            record = ProbeRecord(name, "ok", value=value)
        except NotApplicable as exc:
            record = ProbeRecord(name, "not_applicable", reason=str(exc))
        except (ProbeError, ProbeUnavailable) as exc:
            record = ProbeRecord(name, "error", reason=str(exc))
        except TimeoutError:
            why = "its timeout" if limit == probe.timeout else "the audit deadline"
            record = ProbeRecord(name, "error", reason=f"timed out after {limit:.1f}s ({why})")
        except (TypeError, ValueError) as exc:
            record = ProbeRecord(name, "error", reason=f"probe returned data that is not JSON: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("probe %s crashed", name, exc_info=True)
            record = ProbeRecord(name, "error", reason=f"probe crashed: {type(exc).__name__}: {exc}")
        record = ProbeRecord(record.name, record.state, record.value, record.reason, time.monotonic() - started)
        return self._record(record)

    def _record(self, record: ProbeRecord) -> ProbeRecord:
        if record.name not in self.records:
            self.records[record.name] = record
            if self.progress:
                self.progress(record.name, record)
        return self.records[record.name]
