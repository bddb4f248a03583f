"""Shims that let the inside gathering run on Python 3.9 and 3.10 (the zipapp's floor is 3.9).

The project targets 3.11; the few 3.11 names the gathering code touches at run time are provided
here on older interpreters, before any gathering module is imported. Syntax of 3.10+ (`X | Y`
outside annotations) is rewritten by the zipapp build instead (auditor.fleet.build_zipapp).
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import sys
from typing import Any


def install() -> None:
    """Idempotent; a no-op on 3.11+."""
    if sys.version_info >= (3, 11):  # noqa: UP036 (the zipapp runs on 3.9)
        return
    if not hasattr(datetime, "UTC"):
        setattr(datetime, "UTC", datetime.timezone.utc)  # noqa: B010, UP017
    # 3.11 made asyncio.TimeoutError the builtin TimeoutError; the gatherer catches the builtin.
    asyncio.exceptions.TimeoutError = TimeoutError  # type: ignore[misc]
    asyncio.TimeoutError = TimeoutError  # type: ignore[misc]
    if not hasattr(enum, "StrEnum"):
        setattr(enum, "StrEnum", _StrEnum)  # noqa: B010


class _StrEnum(str, enum.Enum):  # noqa: UP042 (enum.StrEnum is 3.11+)
    """3.11's enum.StrEnum: members are strings, str() and format() give the value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @staticmethod
    def _generate_next_value_(name: str, start: int, count: int, last_values: list[Any]) -> str:
        return name.lower()
