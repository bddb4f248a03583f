"""Go duration strings ("168h", "1h30m", "10s") as the registry's config uses them."""

from __future__ import annotations

import re

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
