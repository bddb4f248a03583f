"""Outside authentication facts: anonymous access, plaintext endpoints, the token protocol, headers.

Probes (facts only; checks/auth.py and checks/http.py judge):
- `auth.anonymous`: anonymous GET /v2/, /v2/_catalog and a manifest of a known repository.
- `auth.plaintext`: what plain-HTTP endpoints (port 80, the http:// form of the target) answer.
- `auth.token`: the Bearer token protocol (realm, service, bad credentials, anonymous and
  pull-only tokens; with --active, whether those tokens can start an upload, cancelled after).
- `http.registry-headers`: the registry's own /v2/ responses (authenticated when needed).
Credentials follow auditor.regauth's policy; no request header is ever recorded.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx

from auditor.errors import NotApplicable, ProbeError
from auditor.httpclient import bounded_request, same_origin
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe
from auditor.regauth import (
    CATALOG_SCOPE,
    MANIFEST_ACCEPT,
    BearerAuth,
    Challenge,
    RegistrySession,
    TokenAnswer,
    find_reference,
    realm_allowed,
    repository_scope,
    request_token,
)

from ._outside import (
    PROBE_REPOSITORY,
    PROBE_TAG,
    budget,
    exchange_facts,
    plain_v2_endpoint,
    require_url,
    resolve,
    same_origin_get,
)

UPLOAD_REPOSITORY = "regaudit-probe/upload-check"
WALK_SHARE = 0.4  # of the time left: the anonymous requests must still get theirs


async def _anonymous(ctx: ProbeContext, base: str, path: str, headers: dict[str, str] | None) -> dict[str, JSON]:
    try:
        response, chain, elsewhere = await same_origin_get(ctx.http(), base + path, budget(ctx), headers=headers,
                                                           max_body=256 * 1024)
    except ProbeError as exc:
        return {"method": "GET", "path": path, "error": str(exc)}
    facts = exchange_facts("GET", path, response)
    facts["redirects_followed"] = len(chain) - 1
    if elsewhere:
        facts["redirected_off_origin"] = elsewhere
    return facts


@probe("auth.anonymous", shape=shapes.AuthAnonymous, timeout=90.0)
async def auth_anonymous(ctx: ProbeContext) -> JSON:
    """Anonymous GET /v2/, /v2/_catalog and a manifest pull: status and challenges of each."""
    base = require_url(ctx)
    reference: dict[str, JSON] = {"repository": PROBE_REPOSITORY, "tag": PROBE_TAG,
                                  "source": "probe name (no credentials given)"}
    walk: dict[str, JSON] | None = None
    first = asyncio.gather(_anonymous(ctx, base, "/v2/", None), _anonymous(ctx, base, "/v2/_catalog", None))
    if ctx.credentials is not None:
        walk_budget = max(1.0, WALK_SHARE * ctx.remaining())
        try:
            async with asyncio.timeout(walk_budget):
                found, is_open = await _walk(ctx, base)
        except ProbeError as exc:
            walk = {"ok": False, "error": str(exc)}
            reference["source"] = "probe name (the authenticated catalog walk failed)"
        except TimeoutError:
            walk = {"ok": False, "error": f"the catalog walk took longer than {walk_budget:.1f}s"}
            reference["source"] = "probe name (the authenticated catalog walk failed)"
        except BaseException:
            first.cancel()
            raise
        else:
            walk = {"ok": True, "open_registry": is_open}
            if found:
                reference = {"repository": found[0], "tag": found[1], "source": "authenticated catalog walk"}
            else:
                reference["source"] = "probe name (the catalog lists no tagged repository)"
    pull = f"/v2/{reference['repository']}/manifests/{reference['tag']}"
    requests = [*await first, await _anonymous(ctx, base, pull, {"Accept": MANIFEST_ACCEPT})]
    if all("error" in r for r in requests):
        reasons = list(dict.fromkeys(str(r["error"]) for r in requests))
        raise ProbeError("no anonymous request got an answer: " + "; ".join(reasons))
    return {"url": base, "reference": reference, "catalog_walk": walk,
            "credentials_given": ctx.credentials is not None, "requests": requests}


async def _walk(ctx: ProbeContext, base: str) -> tuple[tuple[str, str] | None, bool]:
    session = RegistrySession(ctx.http(), base, ctx.credentials, timeout=budget(ctx))
    await session.login()
    return await find_reference(session), session.open


def _plaintext_ports(ctx: ProbeContext) -> list[int]:
    ports = [80]
    port = ctx.target.port
    if port and port not in ports and (ctx.target.scheme == "http" or port != 443):
        ports.append(port)
    return ports


@probe("auth.plaintext", shape=shapes.AuthPlaintext, timeout=60.0)
async def auth_plaintext(ctx: ProbeContext) -> JSON:
    """Plain-HTTP /v2/ on port 80 and the http:// form of the target, on every address of the host."""
    require_url(ctx)
    host = str(ctx.target.host)
    addresses = await resolve(host, 80, budget(ctx, 5.0))
    jobs = [plain_v2_endpoint(ctx, str(a["address"]), a["family"], port)
            for port in _plaintext_ports(ctx) for a in addresses]
    endpoints = list(await asyncio.gather(*jobs))
    return {"host": host, "ports": _plaintext_ports(ctx), "addresses": addresses, "endpoints": endpoints}


def _bearer_challenge(anonymous: dict[str, Any]) -> tuple[Challenge | None, list[str], list[str]]:
    """The first Bearer challenge in the anonymous answers, every scheme seen, every service named."""
    bearer = None
    schemes: list[str] = []
    services: list[str] = []
    for request in anonymous.get("requests") or []:
        for raw in request.get("challenges") or []:
            challenge = Challenge.from_json(raw)
            schemes.append(challenge.scheme)
            if challenge.scheme == "bearer":
                bearer = bearer or challenge
                if "service" in challenge.params:
                    services.append(challenge.params["service"])
    return bearer, sorted(set(schemes)), sorted(set(services))


async def _token(ctx: ProbeContext, realm: str, service: str | None, scope: str,
                 auth: httpx.Auth | None) -> tuple[TokenAnswer | None, dict[str, JSON]]:
    try:
        answer = await request_token(ctx.http(), realm, service, [scope], auth, budget(ctx))
    except ProbeError as exc:
        return None, {"scope": scope, "error": str(exc)}
    facts = answer.facts(UPLOAD_REPOSITORY)
    facts["scope"] = scope
    return answer, facts


async def _try_upload(ctx: ProbeContext, base: str, answer: TokenAnswer | None, realm: str,
                      service: str | None) -> dict[str, JSON]:
    """ACTIVE: POST an upload with the token; cancel (DELETE) any upload session that started.

    Distribution authorises DELETE with the `delete` action, which a push token may lack: the
    cancel is tried with the same token, then with a delete-scope token (anonymous, then the
    given credentials when the realm may have them). Every attempt is recorded.
    """
    if answer is None or not answer.token_issued or answer.token_value is None:
        return {"attempted": False, "reason": "no token was issued, so there is nothing to try"}
    auth = BearerAuth(answer.token_value)
    path = f"/v2/{UPLOAD_REPOSITORY}/blobs/uploads/"
    try:
        response = await bounded_request(ctx.http(), "POST", base + path, max_body=65536, auth=auth,
                                         content=b"", total_timeout=budget(ctx))
    except ProbeError as exc:
        return {"attempted": True, "error": str(exc)}
    facts: dict[str, JSON] = {"attempted": True, "path": path, "status": response.status_code,
                              "upload_started": response.status_code == 202}
    facts["answer"] = exchange_facts("POST", path, response)
    if response.status_code != 202:
        return facts
    location = response.headers.get("location")
    if not location:
        facts["cleanup"] = {"done": False, "reason": "the 202 answer named no upload location"}
        return facts
    upload_url = str(httpx.URL(base + path).join(location))
    if not same_origin(upload_url, base):
        facts["cleanup"] = {"done": False, "reason": "the upload location is not on the target's origin"}
        return facts
    facts["cleanup"] = await _cancel_upload(ctx, base, upload_url, auth, realm, service)
    return facts


async def _cancel_upload(ctx: ProbeContext, base: str, upload_url: str, auth: httpx.Auth, realm: str,
                         service: str | None) -> dict[str, JSON]:
    attempts: list[JSON] = []
    candidates: list[tuple[str, httpx.Auth | None]] = [("the token that started it", auth)]
    delete_scope = repository_scope(UPLOAD_REPOSITORY, "delete")
    principals: list[tuple[str, httpx.Auth | None]] = [("anonymous", None)]
    if ctx.credentials is not None and realm_allowed(realm, base)[0]:
        principals.append(("the given credentials",
                           httpx.BasicAuth(ctx.credentials.username, ctx.credentials.password.reveal())))
    index = 0
    while True:
        if index == len(candidates):
            if not principals:
                break
            who, principal = principals.pop(0)
            try:
                token = await request_token(ctx.http(), realm, service, [delete_scope], principal, budget(ctx))
            except ProbeError as exc:
                attempts.append({"with": f"{who} delete-scope token", "error": str(exc)})
                continue
            if not token.token_issued or token.token_value is None:
                attempts.append({"with": f"{who} delete-scope token", "token_issued": False,
                                 "status": token.status})
                continue
            candidates.append((f"{who} delete-scope token", BearerAuth(token.token_value)))
        label, cancel_auth = candidates[index]
        index += 1
        try:
            cancel = await bounded_request(ctx.http(), "DELETE", upload_url, max_body=65536, auth=cancel_auth,
                                           total_timeout=budget(ctx))
        except ProbeError as exc:
            attempts.append({"with": label, "error": str(exc)})
            continue
        attempts.append({"with": label, "status": cancel.status_code})
        if cancel.status_code in (200, 202, 204):
            return {"done": True, "status": cancel.status_code, "attempts": attempts}
    return {"done": False, "attempts": attempts,
            "reason": "no token allowed to DELETE the upload session (the registry wants the delete action); "
            "the registry's upload purging removes it once it is older than the purge age"}


@probe("auth.token", shape=shapes.AuthToken, timeout=90.0)
async def auth_token(ctx: ProbeContext) -> JSON:
    """The Bearer token protocol as an outsider sees it (upload attempts only with --active)."""
    base = require_url(ctx)
    anonymous = await ctx.evidence("auth.anonymous")
    challenge, schemes, services = _bearer_challenge(anonymous)
    if challenge is None:
        raise NotApplicable(f"the registry's challenge is not Bearer (schemes seen: {', '.join(schemes) or 'none'})")
    realm = challenge.params.get("realm", "")
    service = challenge.params.get("service")
    active = bool(ctx.target.options.get("active"))
    facts: dict[str, JSON] = {
        "realm": realm, "realm_scheme": urlsplit(realm).scheme if realm else None, "service": service,
        "services_seen": services, "target_host": ctx.target.host, "active": active,
        "upload_repository": UPLOAD_REPOSITORY,
    }
    if not realm or urlsplit(realm).scheme not in ("http", "https"):
        facts["error"] = "the Bearer challenge names no usable realm"
        return facts
    bad_user = "regaudit-nonexistent-" + secrets.token_hex(4)
    bad = httpx.BasicAuth(bad_user, secrets.token_urlsafe(18))
    pull_scope = repository_scope(UPLOAD_REPOSITORY, "pull")
    push_scope = repository_scope(UPLOAD_REPOSITORY, "pull,push")
    _, facts["bad_credentials"] = await _token(ctx, realm, service, pull_scope, bad)
    anon_answer, facts["anonymous_token"] = await _token(ctx, realm, service, push_scope, None)
    pull_answer: TokenAnswer | None = None
    if ctx.credentials is None:
        facts["pull_token"] = {"not_tested": "no credentials given"}
    else:
        allowed, why = realm_allowed(realm, base)
        if not allowed:
            facts["pull_token"] = {"not_tested": f"credentials not sent: {why}"}
        else:
            creds = httpx.BasicAuth(ctx.credentials.username, ctx.credentials.password.reveal())
            pull_answer, facts["pull_token"] = await _token(ctx, realm, service, pull_scope, creds)
    if active:
        facts["upload_attempts"] = {
            "anonymous": await _try_upload(ctx, base, anon_answer, realm, service),
            "pull_token": await _try_upload(ctx, base, pull_answer, realm, service) if ctx.credentials is not None
            else {"attempted": False, "reason": "no credentials given"},
        }
    return facts


@probe("http.registry-headers", shape=shapes.HttpRegistryHeaders, timeout=60.0)
async def registry_headers(ctx: ProbeContext) -> JSON:
    """The registry's own /v2/ and /v2/_catalog responses and their headers (authenticated if needed)."""
    base = require_url(ctx)
    try:
        first = await bounded_request(ctx.http(), "GET", base + "/v2/", max_body=65536, total_timeout=budget(ctx))
    except ProbeError as exc:
        raise ProbeError(f"anonymous GET /v2/: {exc}") from None
    facts: dict[str, JSON] = {"anonymous": exchange_facts("GET", "/v2/", first), "responses": [],
                              "authenticated": False, "scheme": base.split("://", 1)[0]}
    if first.status_code == 200:
        facts["open_registry"] = True
        facts["responses"] = [facts["anonymous"]]
        return facts
    if ctx.credentials is None:
        facts["unjudged_reason"] = (f"needs credentials: anonymous GET /v2/ answered {first.status_code}, "
                                    "which is the proxy's or the auth layer's page, not the registry's")
        return facts
    session = RegistrySession(ctx.http(), base, ctx.credentials, timeout=budget(ctx))
    try:
        await session.login()
        responses = [exchange_facts("GET", "/v2/", await session.get("/v2/", scope=None, max_body=65536))]
        catalog = await session.get("/v2/_catalog?n=1", scope=CATALOG_SCOPE, max_body=65536)
        responses.append(exchange_facts("GET", "/v2/_catalog?n=1", catalog))
    except ProbeError as exc:
        facts["unjudged_reason"] = f"needs credentials that work: {exc}"
        return facts
    facts["authenticated"] = True
    facts["responses"] = responses
    return facts
