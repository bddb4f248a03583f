"""`tls.scan`: what the registry's TLS endpoint accepts, measured on the wire.

Facts only (the checks judge): per address, every protocol version (True, False or
"error: reason"), the accepted cipher suites per version, the server's preference, and the
certificate chains with their PEMs and trust anchors, so checks re-judge at any time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from auditor.errors import NotApplicable, ProbeError
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe
from auditor.tlsprobe import ScanOptions, scan
from auditor.tlsprobe.truststore import load_trust_store

PROBE_TIMEOUT = 120.0
HANDSHAKE_TIMEOUT = 5.0


def _learned_anything(result: dict[str, JSON]) -> bool:
    addresses = result.get("addresses")
    if not isinstance(addresses, list):
        return False
    for entry in addresses:
        protocols = entry.get("protocols") if isinstance(entry, dict) else None
        if isinstance(protocols, dict) and any(isinstance(v, bool) for v in protocols.values()):
            return True
    return False


def _reasons(result: dict[str, JSON]) -> str:
    reasons: list[str] = [str(e) for e in result.get("errors") or []]
    for entry in result.get("addresses") or []:
        if not isinstance(entry, dict):
            continue
        answers = entry.get("protocols") or {}
        distinct = sorted({str(v) for v in answers.values()}) if isinstance(answers, dict) else []
        detail = entry.get("error") or "; ".join(distinct)
        reasons.append(f"{entry.get('address')}: {detail}")
    return "; ".join(reasons) or "no address to scan"


@probe("tls.scan", shape=shapes.TlsScan, timeout=PROBE_TIMEOUT)
async def tls_scan(ctx: ProbeContext) -> JSON:
    """Wire-level TLS scan of the registry URL's host and port (every address it resolves to)."""
    target = ctx.target
    if not target.url or not target.host or not target.port:
        raise NotApplicable("no registry URL given: the outside TLS checks need one")
    if target.scheme != "https":
        raise ProbeError(f"the registry URL {target.url} is plain http: there is no TLS to audit")
    ca_bundle = target.path("ca_bundle")
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise ProbeError(f"CA bundle {ca_bundle} does not exist")
        try:
            load_trust_store(ca_bundle)
        except (OSError, ValueError) as exc:
            raise ProbeError(f"cannot load CA bundle {ca_bundle}: {exc}") from None
    budget = min(PROBE_TIMEOUT, ctx.remaining()) - 2.0
    if budget <= 1.0:
        raise ProbeError("no time left before the audit's deadline for a TLS scan")
    options = ScanOptions(timeout=min(HANDSHAKE_TIMEOUT, budget), deadline=budget,
                          ca_bundle=ca_bundle, now=datetime.now(UTC))
    result = await scan(target.host, target.port, server_name=target.host, options=options)
    if not _learned_anything(result):
        raise ProbeError(f"no TLS answer from {target.host}:{target.port}: {_reasons(result)}")
    return result
