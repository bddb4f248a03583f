"""http.* checks, outside: headers on the registry's responses (its own, and its TLS origin's)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed
from auditor.judge.shapes import HttpRegistryHeaders
from auditor.model import JSON, Severity, Vantage


@check(
    id="http.nosniff",
    title="Registry responses carry X-Content-Type-Options: nosniff",
    severity=Severity.LOW,
    area="http",
    vantage=Vantage.OUTSIDE,
    needs=("http.registry-headers",),
    guide="registry config: headers",
    rationale="Without nosniff a browser may render an uploaded blob as HTML or script served from the "
    "registry's origin.",
    passes_when="the registry's own responses under /v2/ (authenticated; a proxy's 401 page is not the "
    "registry's) carry X-Content-Type-Options: nosniff",
    remediation="Add http.headers: {X-Content-Type-Options: [nosniff]} to the registry's config.yml "
    "(or `Header always set X-Content-Type-Options nosniff` in the proxy).",
    generator="registry-config",
    references=("OWASP Secure Headers Project",),
)
def nosniff(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed("http.registry-headers", HttpRegistryHeaders)
    responses = facts.get("responses") or []
    if not responses:
        yield errored("GET /v2/", str(facts.get("unjudged_reason") or "needs credentials: no registry response"),
                      {"anonymous": facts.get("anonymous")}, "an authenticated registry response")
        return
    how = "authenticated" if facts.get("authenticated") else "anonymous (the registry is open)"
    for response in responses:
        subject = f"{response.get('method', 'GET')} {response.get('path')}"
        headers = response.get("headers") or {}
        value = headers.get("x-content-type-options")
        values = value if isinstance(value, list) else [value] if value is not None else []
        observed = {"status": response.get("status"), "x-content-type-options": value,
                    "docker-distribution-api-version": headers.get("docker-distribution-api-version")}
        status = response.get("status")
        if not isinstance(status, int) or not 200 <= status < 300:
            yield errored(subject, f"{how} request answered {status}: not a registry response to judge", observed,
                          "nosniff")
        elif any(str(v).strip().lower() == "nosniff" for v in values):
            yield passed(subject, f"{how} response carries nosniff", observed, "nosniff")
        else:
            yield failed(subject, f"{how} response lacks X-Content-Type-Options: nosniff", observed, "nosniff")


HSTS_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)
HSTS_SUBDOMAINS = re.compile(r"(?:^|;)\s*includesubdomains\s*(?:;|$)", re.IGNORECASE)


def parse_hsts(value: str) -> dict[str, JSON]:
    """max-age and includeSubDomains of one Strict-Transport-Security value (RFC 6797 6.1)."""
    match = HSTS_MAX_AGE.search(value)
    return {"max_age": int(match.group(1)) if match else None,
            "include_subdomains": bool(HSTS_SUBDOMAINS.search(value))}


@check(
    id="http.hsts",
    title="TLS responses carry Strict-Transport-Security",
    severity=Severity.MEDIUM,
    area="http",
    vantage=Vantage.OUTSIDE,
    needs=("http.registry-headers",),
    guide="beyond (TLS hardening: HSTS)",
    rationale="Without HSTS a browser or HTTP client that is once sent to http:// (a typed URL, a link, an "
    "attacker's redirect) talks plaintext first, where an attacker on the path can strip TLS and read "
    "the registry credentials sent with the next request.",
    passes_when="every response of the registry's https origin (the anonymous 401 and the authenticated "
    "answers) carries Strict-Transport-Security with max-age >= the profile's minimum (one year; two "
    "years under the Mozilla presets)",
    remediation="Apache: `Header always set Strict-Transport-Security \"max-age=63072000\"` in the TLS "
    "vhost (`always`, so 401 answers carry it too); nginx: `add_header Strict-Transport-Security "
    "\"max-age=63072000\" always;` in the TLS server block.",
    generator="apache-vhost",
    references=("RFC 6797 (HTTP Strict Transport Security)",
                "Mozilla server-side TLS guidelines 5.7: hsts_min_age 63072000"),
    params={"min_max_age": 31536000, "require_include_subdomains": False},
)
def hsts(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed("http.registry-headers", HttpRegistryHeaders)
    minimum = int(params.get("min_max_age") or 0)
    subdomains = bool(params.get("require_include_subdomains"))
    expected = {"max_age_at_least": minimum, "include_subdomains": subdomains}
    if facts.get("scheme") == "http":
        yield failed("GET /v2/", "the registry is served over plain http: there is no TLS origin to pin with HSTS",
                     {"scheme": "http"}, expected)
        return
    anonymous = facts.get("anonymous")
    answers: list[tuple[str, Mapping[str, Any]]] = [("anonymous", anonymous)] if isinstance(anonymous, dict) else []
    if facts.get("authenticated"):
        answers += [("authenticated", r) for r in facts.get("responses") or [] if isinstance(r, dict)]
    if not answers:
        yield errored("GET /v2/", "no https response was recorded", None, expected)
        return
    for how, response in answers:
        subject = f"{response.get('method', 'GET')} {response.get('path')} ({how})"
        raw = (response.get("headers") or {}).get("strict-transport-security")
        values = raw if isinstance(raw, list) else [raw] if raw is not None else []
        observed: dict[str, JSON] = {"status": response.get("status"), "strict-transport-security": raw}
        if not values:
            yield failed(subject, f"{how} answer ({response.get('status')}) has no Strict-Transport-Security header",
                         observed, expected)
            continue
        parsed = parse_hsts(str(values[0]))  # RFC 6797 8.1: only the first header counts
        observed.update(parsed)
        max_age = parsed["max_age"]
        if max_age is None:
            yield failed(subject, f"Strict-Transport-Security without a valid max-age: {values[0]!r}", observed,
                         expected)
        elif max_age < minimum:
            yield failed(subject, f"HSTS max-age {max_age}s is below the minimum {minimum}s", observed, expected)
        elif subdomains and not parsed["include_subdomains"]:
            yield failed(subject, "HSTS lacks includeSubDomains, which the profile requires", observed, expected)
        else:
            yield passed(subject, f"HSTS max-age {max_age}s", observed, expected)
