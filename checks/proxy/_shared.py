"""Parameters and judgements the proxy checks of one concern share across Apache and nginx (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditor.checkapi import Params

HSTS = "strict-transport-security"
REFS = ("NIST SP 800-190 4.2.1 (registry: insecure configuration)",)
REFS_TLS = ("NIST SP 800-52 Rev. 2 3.1, 3.3.1", "CIS Docker Benchmark 2.6 (TLS for the registry)")
GUIDE_CIPHERS = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]
# proxy.apache-tls and proxy.nginx-tls: the same profile parameters.
TLS_PARAMS: dict[str, Any] = {"allowed_protocols": ["TLSv1.2", "TLSv1.3"], "allowed_tls12_ciphers": GUIDE_CIPHERS,
                              "require_hsts": False, "hsts_min_max_age": 31536000}


def hsts_problem(headers: Sequence[Mapping[str, Any]], params: Params, where: str) -> str | None:
    """The HSTS shortfall of the response headers a proxy adds, when the profile requires HSTS."""
    if not params.get("require_hsts"):
        return None
    minimum = int(params.get("hsts_min_max_age") or 0)
    found = [h for h in headers if str(h.get("name", "")).lower() == HSTS]
    if not found:
        return f"no Strict-Transport-Security header ({where}); the profile requires max-age >= {minimum}"
    value = str(found[-1].get("value") or "").strip("'\"")
    age = next((int(p.split("=", 1)[1]) for p in value.replace(" ", "").split(";")
                if p.lower().startswith("max-age=") and p.split("=", 1)[1].isdigit()), None)
    if age is None or age < minimum:
        return f"Strict-Transport-Security {value!r} ({found[-1].get('where')}): max-age below {minimum}"
    return None


def shown_where(entry: Mapping[str, Any]) -> str:
    """Where an effective value comes from, for messages of every proxy check: 'vhost, FILE:LINE',
    'server, FILE:LINE', or the server's default."""
    level = str(entry.get("level") or "default")
    where = entry.get("where")
    if level.startswith("default"):
        return level if level.startswith("default (") or not where else f"{level}, {where}"
    return f"{level}, {where}" if where else level
