"""Sizes and durations as configs spell them: Go durations (the registry), nginx sizes and times."""

from __future__ import annotations

import math
import re
from typing import Any

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: object) -> float | None:
    """Seconds for a Go duration string (or a bare number of seconds); None when unparseable."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return float(text)
    if not isinstance(text, str) or not text.strip():
        return None
    raw = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if pos == len(raw) and pos > 0 else None


def format_duration(seconds: float) -> str:
    """A short human form: 604800 -> '168h', 90 -> '1m30s'."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


# ---- nginx ---------------------------------------------------------------------------------------

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_TIME = re.compile(r"(\d+)(ms|s|m|h|d|w|M|y)?")
_TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


def size_bytes(text: str) -> int | None:
    """nginx size syntax ("0", "32k", "4096m", "1g") in bytes; None when it is not a size."""
    match = _SIZE.match(text.strip())
    if not match:
        return None
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * factor


def time_seconds(text: str) -> float | None:
    """nginx time syntax ("900s", "15m", "1h 30m", "900") in seconds; None when it is not a time."""
    raw = text.strip().replace(" ", "")
    if not raw or not re.fullmatch(r"(\d+(ms|s|m|h|d|w|M|y)?)+", raw):
        return None
    total = 0.0
    for number, unit in _TIME.findall(raw):
        total += int(number) * _TIME_UNITS[unit or "s"]
    return total


# ---- tmpfs ---------------------------------------------------------------------------------------

MIB = 1024 * 1024


def required_bytes(largest_layer: int, largest_image: int, params: dict[str, Any], current: int = 0) -> int:
    """The tmpfs size the profile asks for, rounded up to a whole MiB, never below `current`."""
    need = float(params.get("factor", 2.0)) * largest_layer
    if largest_image > int(params.get("large_image_bytes", 524288000)):
        need = max(need, float(params.get("floor_bytes", 2147483648)))
    return max(math.ceil(need / MIB) * MIB, current)


def size_option(size: int) -> str:
    return f"{size // (1024 * MIB)}G" if size % (1024 * MIB) == 0 else f"{size // MIB}M"
