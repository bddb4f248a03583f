"""registry.token-config: Token authentication is configured safely.

Judged on the effective config `config.registry` records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlsplit

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, skipped
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, raw, subject


@check(
    id="registry.token-config",
    title="Token authentication is configured safely",
    severity=Severity.HIGH,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Token-Based Authentication",
    rationale="A token realm over plain HTTP leaks credentials; a missing or expired root bundle breaks or "
    "weakens token validation; autoredirect sends clients to a realm built from the request's Host.",
    passes_when="when auth.token is configured: realm https, service and issuer set, rootcertbundle exists, "
    "parses and is unexpired, autoredirect false",
    remediation="Fix auth.token in config.yml: https realm, service, issuer, a valid rootcertbundle, "
    "autoredirect: false.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.2",),
)
def token_config(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, token = raw(facts["config"], "auth.token")
    if not present or not isinstance(token, dict):
        yield skipped(subject(facts), "no token authentication configured (auth.token absent)")
        return
    problems = []
    realm = str(token.get("realm") or "")
    try:
        https = urlsplit(realm).scheme == "https"
    except ValueError:  # e.g. an unbalanced [ in the host part
        https = False
    if not https:
        problems.append(f"realm {realm!r} is not https")
    for key in ("service", "issuer"):
        if not token.get(key):
            problems.append(f"{key} is not set")
    if token.get("autoredirect") is True:
        problems.append("autoredirect is true")
    bundle = facts.get("rootcertbundle") or {}
    if not bundle.get("exists"):
        problems.append(f"rootcertbundle {token.get('rootcertbundle')!r} does not exist")
    elif bundle.get("parse_error"):
        problems.append(f"rootcertbundle: {bundle['parse_error']}")
    else:
        for cert in bundle.get("certificates", []):
            not_after = dt.datetime.fromisoformat(cert["not_after"])
            if not_after <= ev.now:
                problems.append(f"rootcertbundle certificate {cert['subject']} expired {cert['not_after']}")
            if dt.datetime.fromisoformat(cert["not_before"]) > ev.now:
                problems.append(f"rootcertbundle certificate {cert['subject']} is not valid yet")
        if not bundle.get("certificates"):
            problems.append("rootcertbundle holds no certificate")
    observed = {"token": token, "rootcertbundle": bundle}
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed,
                     expected="https realm, service, issuer, valid rootcertbundle, autoredirect false")
    else:
        yield passed(subject(facts), f"token auth: realm {realm}, service {token['service']}", observed=observed)
