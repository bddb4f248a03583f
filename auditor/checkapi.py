"""The check API: metadata plus a pure `judge(evidence, params)` that yields outcomes.

A check is a module-level :class:`Check` made with the :func:`check` decorator. Checks do no
I/O: everything they read comes from :class:`Evidence`, gathered once by the probes. That makes
each check testable on recorded evidence and every audit reproducible offline.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from auditor.errors import EvidenceNotApplicable, PluginError, ProbeUnavailable
from auditor.model import JSON, CheckMeta, Severity, Status, Vantage

Params = Mapping[str, Any]
T = TypeVar("T")
U = TypeVar("U")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*\.[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Outcome:
    """What a check says about one subject; the runner adds the check id and severity."""

    status: Status
    subject: str
    message: str
    observed: JSON = None
    expected: JSON = None


def passed(subject: str, message: str, observed: JSON = None, expected: JSON = None) -> Outcome:
    return Outcome(Status.PASS, subject, message, observed, expected)


def failed(subject: str, message: str, observed: JSON = None, expected: JSON = None) -> Outcome:
    return Outcome(Status.FAIL, subject, message, observed, expected)


def warned(subject: str, message: str, observed: JSON = None, expected: JSON = None) -> Outcome:
    return Outcome(Status.WARN, subject, message, observed, expected)


def errored(subject: str, message: str, observed: JSON = None, expected: JSON = None) -> Outcome:
    return Outcome(Status.ERROR, subject, message, observed, expected)


def skipped(subject: str, reason: str) -> Outcome:
    return Outcome(Status.SKIP, subject, reason)


@dataclass(frozen=True)
class ProbeRecord:
    """The recorded outcome of one probe: `ok` with a value, `error` or `not_applicable`."""

    name: str
    state: str
    value: JSON = None
    reason: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, JSON]:
        return {
            "state": self.state,
            "value": self.value,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, JSON]) -> ProbeRecord:
        return cls(name, data["state"], data.get("value"), data.get("reason", ""), data.get("seconds", 0.0))


class Evidence:
    """Read-only view of the gathered evidence, at the audit's judging time `now`."""

    def __init__(self, records: Mapping[str, ProbeRecord], now: datetime) -> None:
        self._records = dict(records)
        self.now = now
        # What checks derive alike from this evidence (signature verdicts, resolved scan reports),
        # computed by the first and reused by the others; it goes when the evidence object goes.
        self.memo: dict[str, Any] = {}

    def __getitem__(self, name: str) -> JSON:
        """The value of probe `name`; raises so the runner makes the check `error` or `skip`."""
        record = self._records.get(name)
        if record is None:
            raise ProbeUnavailable(name, "evidence was not gathered (check does not declare it in needs?)")
        if record.state == "ok":
            return record.value
        if record.state == "not_applicable":
            raise EvidenceNotApplicable(name, record.reason)
        raise ProbeUnavailable(name, record.reason)

    def typed(self, name: str, shape: type[T]) -> T:
        """The value of probe `name` read as its declared shape (a TypedDict of auditor/judge/shapes.py);
        raises like `ev[name]`. The audit and `evaluate` have checked the value against the shape's
        schema, so the keys and types a check reads are the declared ones."""
        value = self[name]
        if not isinstance(value, dict):
            raise ProbeUnavailable(name, f"value is a {type(value).__name__}, not the declared {shape.__name__}")
        return cast(T, value)

    def get(self, name: str, default: JSON = None) -> JSON:
        """The value of probe `name` when it succeeded, else `default` (for optional evidence)."""
        record = self._records.get(name)
        return record.value if record is not None and record.state == "ok" else default

    def state(self, name: str) -> str | None:
        record = self._records.get(name)
        return record.state if record else None

    def reason(self, name: str) -> str:
        record = self._records.get(name)
        return record.reason if record else "not gathered"


def map_in_order(fn: Callable[[T], U], items: Sequence[T], threads: int = 2, min_share: int = 256) -> list[U]:
    """`[fn(item) for item in items]`, with consecutive shares of at least `min_share` items mapped by
    up to `threads` threads. For pure work that spends its time in code that releases the GIL (the
    arithmetic of signature verification): one thread's C call overlaps another's Python, and the
    list is the same as the one-thread map. `fn` must be safe to call from several threads at once."""
    shares = max(1, min(threads, len(items) // max(1, min_share)))
    if shares == 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    size = -(-len(items) // shares)
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="judge") as pool:
        parts = list(pool.map(lambda chunk: [fn(item) for item in chunk], chunks))
    return [out for part in parts for out in part]


Judge = Callable[[Evidence, Params], Iterable[Outcome]]


@dataclass(frozen=True)
class Check:
    """A check: its metadata and its pure judge function."""

    meta: CheckMeta
    judge_fn: Judge

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def module(self) -> str:
        """The module that defines the check (a built-in's follows its id: docs/architecture.md)."""
        return str(self.judge_fn.__module__)

    @property
    def source(self) -> str:
        """Where the check is written: checks/<path>.py for a built-in, the file's path otherwise."""
        builtin = "auditor.checks."
        if self.module.startswith(builtin):
            return "checks/" + "/".join(self.module[len(builtin):].split(".")) + ".py"
        return inspect.getsourcefile(self.judge_fn) or self.module

    def judge(self, evidence: Evidence, params: Params) -> Iterator[Outcome]:
        yield from self.judge_fn(evidence, params)


def check(
    *,
    id: str,
    title: str,
    severity: Severity,
    area: str,
    vantage: Vantage,
    needs: Iterable[str],
    rationale: str,
    passes_when: str,
    remediation: str,
    guide: str,
    generator: str | None = None,
    references: Iterable[str] = (),
    params: Mapping[str, JSON] | None = None,
) -> Callable[[Judge], Check]:
    """Decorate a judge function into a :class:`Check`; metadata is validated at definition."""
    meta = CheckMeta(
        id=id,
        title=title,
        severity=severity,
        area=area,
        vantage=vantage,
        needs=tuple(needs),
        rationale=rationale,
        passes_when=passes_when,
        remediation=remediation,
        guide=guide,
        generator=generator,
        references=tuple(references),
        params=dict(params or {}),
    )
    validate_meta(meta)

    def wrap(fn: Judge) -> Check:
        return Check(meta=meta, judge_fn=fn)

    return wrap


def validate_meta(meta: CheckMeta) -> None:
    """Raise PluginError when the metadata is incomplete or malformed."""
    if not ID_PATTERN.match(meta.id):
        raise PluginError(f"check id {meta.id!r} is not of the form area.name")
    for name in ("title", "area", "rationale", "passes_when", "remediation", "guide"):
        if not str(getattr(meta, name)).strip():
            raise PluginError(f"check {meta.id}: metadata field {name!r} is empty")
    if not isinstance(meta.severity, Severity) or not isinstance(meta.vantage, Vantage):
        raise PluginError(f"check {meta.id}: severity and vantage must be Severity and Vantage")
    if not meta.needs:
        raise PluginError(f"check {meta.id}: declares no evidence in needs")
