"""regaudit's wire-level TLS prober: crafted hellos for SSLv2 .. TLS 1.3, suite enumeration over
the whole IANA registry, server preference and certificate chain facts.

Entry point: `scan(host, port, options=ScanOptions(...))` -> JSON-serialisable dict.
"""

from auditor.tlsprobe.scanner import ScanOptions, scan

__all__ = ["ScanOptions", "scan"]
