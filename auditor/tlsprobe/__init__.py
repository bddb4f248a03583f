"""regaudit's wire-level TLS prober: crafted hellos for SSLv2 .. TLS 1.3, suite enumeration over
the whole IANA registry, server preference and certificate chain facts.

Entry point: `scan(host, port, options=ScanOptions(...))` -> JSON-serialisable dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.tlsprobe.scanner import ScanOptions, scan

__all__ = ["ScanOptions", "scan"]


def __getattr__(name: str) -> Any:
    """`scan` and `ScanOptions` load the scanner (sockets, X.509) on first use only: the checks import
    the cipher tables of this package without it."""
    if name in __all__:
        from auditor.tlsprobe import scanner

        return getattr(scanner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
