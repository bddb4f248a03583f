"""The typed, frozen result model shared by the engine, the checks and the report writers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = Any
"""A JSON-serialisable value: dict, list, str, int, float, bool or None."""


class Severity(enum.IntEnum):
    """How much a failing check matters. Ordered: INFO < LOW < MEDIUM < HIGH < CRITICAL."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self]  # a dict lookup: enum attribute access is slow at 60,000 results

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name (case-insensitive); raise ValueError naming the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose one of: {choices})") from None


_SEVERITY_LABELS = {s: s.name.lower() for s in Severity}


class Status(enum.StrEnum):
    """The verdict of one result."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"
    WAIVED = "waived"


class Vantage(enum.StrEnum):
    """Where a check looks from: a client's network, the registry host, or the registry's content."""

    OUTSIDE = "outside"
    INSIDE = "inside"
    CONTENT = "content"


# Rollup order for a check with several results: the first status present wins.
STATUS_ROLLUP_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.WARN,
    Status.WAIVED,
    Status.PASS,
    Status.SKIP,
)


@dataclass(frozen=True)
class CheckMeta:
    """Everything a reader needs to know about a check, independent of any run."""

    id: str
    title: str
    severity: Severity
    area: str
    vantage: Vantage
    needs: tuple[str, ...]
    rationale: str
    passes_when: str
    remediation: str
    guide: str
    generator: str | None = None
    references: tuple[str, ...] = ()
    params: Mapping[str, JSON] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.label,
            "area": self.area,
            "vantage": self.vantage.value,
            "needs": list(self.needs),
            "rationale": self.rationale,
            "passes_when": self.passes_when,
            "remediation": self.remediation,
            "guide": self.guide,
            "generator": self.generator,
            "references": list(self.references),
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class WaiverRef:
    """The waiver that turned a failure into `waived` (or an expired one that no longer did)."""

    reason: str
    owner: str
    expires: str
    expired: bool


@dataclass(frozen=True)
class Result:
    """One verdict of one check on one subject (a tag, a file, an address...)."""

    check_id: str
    status: Status
    severity: Severity
    subject: str
    message: str
    observed: JSON = None
    expected: JSON = None
    waiver: WaiverRef | None = None

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "check": self.check_id,
            "status": str(self.status),
            "severity": _SEVERITY_LABELS[self.severity],
            "subject": self.subject,
            "message": self.message,
            "observed": self.observed,
            "expected": self.expected,
        }
        if self.waiver is not None:
            out["waiver"] = {
                "reason": self.waiver.reason,
                "owner": self.waiver.owner,
                "expires": self.waiver.expires,
                "expired": self.waiver.expired,
            }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> Result:
        waiver = data.get("waiver")
        return cls(
            check_id=data["check"],
            status=Status(data["status"]),
            severity=Severity.parse(data["severity"]),
            subject=data["subject"],
            message=data["message"],
            observed=data.get("observed"),
            expected=data.get("expected"),
            waiver=WaiverRef(**waiver) if waiver else None,
        )


def rollup(statuses: list[Status]) -> Status:
    """The status of a check from the statuses of its results (no results: error)."""
    for status in STATUS_ROLLUP_ORDER:
        if status in statuses:
            return status
    return Status.ERROR
