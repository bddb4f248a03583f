"""What the generators know about the site: the recorded evidence, the failing results, the profile.

Generators read facts from here (never from the network); the live files they rewrite are read
from disk, so a secret the evidence redacted is never written back as a mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.checkapi import Check, ProbeRecord
from auditor.model import Result, Status
from auditor.profile import Profile

FAILING = (Status.FAIL, Status.ERROR, Status.WARN)


@dataclass
class Site:
    """Evidence, failing results and profile parameters of one audit."""

    records: Mapping[str, ProbeRecord]
    results: Sequence[Result]
    profile: Profile
    checks: Mapping[str, Check]
    target: Mapping[str, Any] = field(default_factory=dict)

    def value(self, probe: str) -> Any:
        """The value of an `ok` probe, else None."""
        record = self.records.get(probe)
        return record.value if record is not None and record.state == "ok" else None

    def failing(self, check_id: str) -> list[Result]:
        return [r for r in self.results if r.check_id == check_id and r.status in FAILING]

    def failing_ids(self) -> set[str]:
        return {r.check_id for r in self.results if r.status in FAILING}

    def params(self, check_id: str) -> dict[str, Any]:
        item = self.checks.get(check_id)
        return dict(self.profile.params_for(item.meta)) if item else {}

    def discovery(self, service: str) -> dict[str, Any]:
        found = self.value("host.discovery") or {}
        value = found.get(service)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def hostname(self) -> str | None:
        host = self.target.get("host")
        if host:
            return str(host)
        vhost = (self.value("config.apache") or {}).get("vhost") or {}
        return vhost.get("server_name")


def read_live(path: str | Path) -> bytes | None:
    """The live file's bytes, or None when it does not exist or cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


BEGIN_CERT = b"-----BEGIN CERTIFICATE-----"


def hold_chains(cert_paths: list[str]) -> bool:
    """Whether every live certificate file in `cert_paths` (at least one) holds a chain, leaf and
    issuer: what a proxy needs to find the issuer for OCSP stapling without a separate CA file."""
    if not cert_paths:
        return False
    for cert in cert_paths:
        data = read_live(cert)
        if data is None or data.count(BEGIN_CERT) < 2:
            return False
    return True


def split_where(where: str | None) -> tuple[str, int] | None:
    """'/etc/nginx/nginx.conf:22' -> ('/etc/nginx/nginx.conf', 22)."""
    if not where or ":" not in where:
        return None
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() else None
