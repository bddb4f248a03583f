"""proxy.forwarded-headers: nginx passes Host and the forwarding headers to the registry."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.model import Severity, Vantage

from ._nginx import GUIDE_NGINX, NGINX, _nginx_servers, _no_registry_server, _server_subject
from ._shared import REFS


@check(
    id="proxy.forwarded-headers",
    title="nginx passes Host and the forwarding headers to the registry",
    severity=Severity.LOW,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX,),
    guide=f"{GUIDE_NGINX}: location /v2/ proxy_set_header",
    rationale="Without Host and X-Forwarded-Proto the registry builds wrong upload Location URLs (http, or "
    "the upstream's name); without X-Real-IP / X-Forwarded-For its logs show only the proxy.",
    passes_when="the proxy_set_header list in effect for /v2/ (nginx inherits it only when the inner level "
    "has none) sets Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto to non-empty values",
    remediation="In location /v2/: proxy_set_header Host $host; X-Real-IP $remote_addr; X-Forwarded-For "
    "$proxy_add_x_forwarded_for; X-Forwarded-Proto $scheme (repeat every header at the level that sets any).",
    generator="nginx-server",
    references=REFS,
    params={"headers": ["Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto"]},
)
def forwarded_headers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    wanted = [str(h) for h in params["headers"]]
    for server in servers:
        effective = server.get("proxy_set_header") or {}
        headers = {str(h.get("name", "")).lower(): h for h in effective.get("headers") or []}
        missing = [h for h in wanted if not str((headers.get(h.lower()) or {}).get("value") or "").strip()
                   or (h.lower() == "host" and str(headers[h.lower()].get("value")) == "$proxy_host")]
        observed = {"level": effective.get("level"), "headers": effective.get("headers")}
        if missing:
            note = " (nginx's defaults: Host $proxy_host, Connection close)" if effective.get("level") == "default" \
                else f" (the list in effect is the one at the {effective.get('level')} level)"
            yield failed(_server_subject(facts, server), "not passed to the registry: " + ", ".join(missing) + note,
                         observed=observed, expected=wanted)
        else:
            yield passed(_server_subject(facts, server), "passes " + ", ".join(wanted), observed=observed,
                         expected=wanted)
