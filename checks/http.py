"""http.* checks, outside: headers on the registry's own responses."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed
from auditor.model import Severity, Vantage


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
    facts = ev["http.registry-headers"]
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
