"""auth.* checks, outside: anonymous access, credentials over plaintext, the token protocol."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped, warned
from auditor.judge.shapes import AuthAnonymous, AuthPlaintext, AuthToken, NetRegistryPort
from auditor.model import Severity, Vantage

REFS = ("NIST SP 800-190 4.2.3 (insufficient authentication and authorization restrictions)",
        "CIS Docker Benchmark (registry access control)")
WRITE_ACTIONS = {"push", "delete", "*"}
ANONYMOUS = "an anonymous"
PULL_ONLY = "a pull-only"


def _schemes(exchange: Mapping[str, Any]) -> list[str]:
    return [str(c.get("scheme")) for c in exchange.get("challenges") or []]


@check(
    id="auth.anonymous-denied",
    title="Anonymous clients are denied with a 401 challenge",
    severity=Severity.CRITICAL,
    area="auth",
    vantage=Vantage.OUTSIDE,
    needs=("auth.anonymous",),
    guide="Basic auth / token auth",
    rationale="A registry that answers anonymous clients gives away its catalog and images to anyone "
    "who can reach it; a 401 with a challenge is how clients learn to authenticate.",
    passes_when="anonymous GET /v2/, /v2/_catalog and a manifest GET of a known repository all answer 401 "
    "with a WWW-Authenticate challenge",
    remediation="Require authentication on /v2/: `Require valid-user` inside the Apache <Location /v2/>, "
    "auth_basic in nginx, or auth.token / auth.htpasswd in the registry config.",
    generator="apache-vhost",
    references=REFS,
)
def anonymous_denied(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed("auth.anonymous", AuthAnonymous)
    reference = facts.get("reference") or {}
    walk = facts.get("catalog_walk") or {}
    for exchange in facts.get("requests") or []:
        subject = f"{exchange.get('method', 'GET')} {exchange.get('path')}"
        is_pull = "/manifests/" in str(exchange.get("path"))
        observed = {k: exchange.get(k) for k in ("status", "challenges", "redirected_off_origin", "error")
                    if exchange.get(k) is not None}
        observed["challenge_schemes"] = _schemes(exchange)
        if is_pull:
            observed["reference_source"] = reference.get("source")
        expected = "401 with a WWW-Authenticate challenge"
        if "error" in exchange:
            yield errored(subject, f"no usable answer: {exchange['error']}", observed, expected)
            continue
        status = exchange.get("status")
        if status == 401 and exchange.get("challenges"):
            if is_pull and facts.get("credentials_given") and not walk.get("ok"):
                yield errored(subject, "401 on a probe repository name only: the authenticated catalog walk "
                              f"that finds a real repository failed ({walk.get('error')})", observed, expected)
                continue
            note = "" if reference.get("source") == "authenticated catalog walk" or not is_pull else (
                f" (on {reference.get('source')}; give credentials to test a real repository)")
            yield passed(subject, f"401 with {', '.join(_schemes(exchange))} challenge{note}", observed, expected)
        elif status == 401:
            yield failed(subject, "401 without a WWW-Authenticate challenge: clients cannot authenticate",
                         observed, expected)
        elif exchange.get("redirected_off_origin"):
            yield errored(subject, f"{status} redirect to another origin ({exchange['redirected_off_origin']}); "
                          "not followed, so the registry's answer is unknown", observed, expected)
        elif isinstance(status, int) and 200 <= status < 300:
            yield failed(subject, f"answered {status} to an anonymous client: no authentication", observed, expected)
        else:
            yield failed(subject, f"answered {status}, not a 401 challenge (an anonymous client is not asked to "
                         "authenticate)", observed, expected)


def _judge_plain(subject: str, entry: Mapping[str, Any], what: str) -> Outcome:
    """One plaintext endpoint: closed or redirecting to https passes; serving /v2/ or Basic fails."""
    state = entry.get("state")
    observed = {k: entry.get(k) for k in ("state", "detail", "http", "http_error") if entry.get(k) is not None}
    expected = "closed, or a redirect to https"
    if state in ("closed", "filtered", "unreachable"):
        return passed(subject, f"{what} not reachable ({entry.get('detail')})", observed, expected)
    if state != "open":
        return errored(subject, f"cannot tell whether {what} is reachable: {entry.get('detail')}", observed, expected)
    if "http_error" in entry:
        return errored(subject, f"{what} accepts connections but gave no usable HTTP answer: {entry['http_error']}",
                       observed, expected)
    http = entry.get("http") or {}
    status = http.get("status")
    headers = http.get("headers") or {}
    schemes = _schemes(http)
    location = str(headers.get("location") or "")
    if "basic" in schemes:
        return failed(subject, f"{what} sends a Basic challenge over plaintext HTTP: passwords travel in clear",
                      observed, expected)
    if "docker-distribution-api-version" in headers or status == 200 or (status == 401 and schemes):
        return failed(subject, f"{what} serves /v2/ over plaintext HTTP (status {status})", observed, expected)
    if isinstance(status, int) and 300 <= status < 400:
        if location.lower().startswith("https://"):
            return passed(subject, f"{what} redirects to {location}", observed, expected)
        return warned(subject, f"{what} redirects to a non-https location {location!r}", observed, expected)
    return passed(subject, f"{what} answers {status} to /v2/ and does not serve the registry", observed, expected)


@check(
    id="auth.challenge-over-tls",
    title="No plaintext HTTP endpoint serves /v2/ or a Basic challenge",
    severity=Severity.HIGH,
    area="auth",
    vantage=Vantage.OUTSIDE,
    needs=("auth.plaintext", "net.registry-port"),
    guide="reverse proxy, TLS",
    rationale="A Basic challenge or the registry API over plain HTTP invites clients to send credentials "
    "and images in clear (docs/guide-notes.md#inner-nginx-listener: the guide's inner nginx listen 80).",
    passes_when="port 80 of the host and the http:// form of the target are closed or redirect to https, "
    "and no plaintext registry port answers /v2/ (IPv4 and IPv6)",
    remediation="Serve /v2/ only over TLS: `Redirect permanent / https://<host>/` on :80, inner nginx on "
    "127.0.0.1:8080, the registry bound to 127.0.0.1.",
    generator="apache-vhost",
    references=REFS,
)
def challenge_over_tls(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed("auth.plaintext", AuthPlaintext)
    for entry in facts.get("endpoints") or []:
        subject = f"http://{_hostport(entry)}/v2/"
        yield _judge_plain(subject, entry, f"plaintext port {entry.get('port')}")
    if ev.state("net.registry-port") == "ok":
        registry = ev.typed("net.registry-port", NetRegistryPort)
        for entry in registry.get("addresses") or []:
            if entry.get("state") == "open":
                yield _judge_plain(f"http://{_hostport(entry)}/v2/", entry, f"registry port {entry.get('port')}")
    elif ev.state("net.registry-port") == "error":
        yield errored("registry port", f"whether the registry port serves plaintext /v2/ is unknown: "
                      f"{ev.reason('net.registry-port')}")


def _hostport(entry: Mapping[str, Any]) -> str:
    address = str(entry.get("address"))
    return f"[{address}]:{entry.get('port')}" if ":" in address else f"{address}:{entry.get('port')}"


def _grants_write(token: Mapping[str, Any]) -> list[str]:
    return sorted(set(token.get("actions_granted") or []) & WRITE_ACTIONS)


def _judge_token(subject: str, token: Mapping[str, Any], upload: Mapping[str, Any] | None, active: bool,
                 who: str) -> Outcome:
    observed: dict[str, Any] = {"token_request": token}
    if upload is not None:
        observed["upload_attempt"] = upload
    expected = "no token that can start an upload"
    if "not_tested" in token:
        return skipped(subject, f"not tested: {token['not_tested']}")
    if "error" in token and "status" not in token:
        return errored(subject, f"token request failed: {token['error']}", observed, expected)
    writes = _grants_write(token)
    if upload is not None and upload.get("attempted"):
        if "error" in upload:
            return errored(subject, f"upload attempt failed: {upload['error']}", observed, expected)
        if upload.get("upload_started"):
            cleanup = upload.get("cleanup") or {}
            cleaned = "cancelled" if cleanup.get("done") else f"NOT cancelled ({cleanup.get('reason') or cleanup})"
            return failed(subject, f"{who.capitalize()} token started an upload (202); the upload was {cleaned}",
                          observed, expected)
        if writes:
            return warned(subject, f"{who.capitalize()} token claims {', '.join(writes)} but the registry "
                          f"refused the upload (HTTP {upload.get('status')})", observed, expected)
        return passed(subject, f"{who.capitalize()} token cannot start an upload (HTTP {upload.get('status')})",
                      observed, expected)
    if writes:
        return failed(subject, f"the token service grants {', '.join(writes)} to {who} token request"
                      + ("" if active else " (upload not tried: run with --active to confirm)"), observed, expected)
    if not token.get("token_issued"):
        if who == PULL_ONLY:
            return errored(subject, f"the token service refused the given credentials (HTTP {token.get('status')}): "
                           "the pull-only token could not be tested", observed, expected)
        return passed(subject, f"no token issued to {who} token request (HTTP {token.get('status')})",
                      observed, expected)
    if not active:
        return skipped(subject, f"not tested: whether {who} token can start an upload is an active probe "
                       "(run with --active); its claims grant no push")
    return errored(subject, f"{who.capitalize()} token was issued but no upload attempt was recorded",
                   observed, expected)


@check(
    id="auth.token-service",
    title="The token service is sound: https realm, matching service, no write tokens for the wrong clients",
    severity=Severity.HIGH,
    area="auth",
    vantage=Vantage.OUTSIDE,
    needs=("auth.token",),
    guide="token-based authentication",
    rationale="With token auth the token service is the lock: a plaintext realm leaks passwords, a token "
    "service that hands out tokens for bad credentials or push scope to anonymous clients opens the registry.",
    passes_when="when the challenge is Bearer: the realm is https, the service is named, consistent and is "
    "the issued tokens' audience, bad credentials get no token, an anonymous or pull-only token cannot start "
    "an upload (the upload attempt is an active probe, only with --active, and is cancelled after)",
    remediation="Serve the realm over https, set auth.token.service to the registry's name, and restrict "
    "the token service's ACL: no push for anonymous users, push only for the users who need it.",
    generator="registry-config",
    references=REFS,
)
def token_service(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed("auth.token", AuthToken)
    realm = facts.get("realm")
    if facts.get("realm_scheme") == "https":
        yield passed("token realm", f"realm {realm} is https", realm, "an https realm")
    else:
        yield failed("token realm", f"realm {realm!r} is not https: passwords go to it in clear", realm,
                     "an https realm")
    if "error" in facts:
        yield errored("token service", str(facts["error"]))
        return
    service = facts.get("service")
    seen = facts.get("services_seen") or []
    tokens = {"anonymous_token": facts.get("anonymous_token"), "pull_token": facts.get("pull_token")}
    audiences = {name: token.get("audience") for name, token in tokens.items()
                 if isinstance(token, dict) and token.get("token_issued") and token.get("audience") is not None}
    observed = {"service": service, "services_seen": seen, "token_audiences": audiences}
    mismatched = {k: v for k, v in audiences.items() if v != service and not (isinstance(v, list) and service in v)}
    if not service:
        yield failed("token service", "the Bearer challenge names no service", observed, "a service name")
    elif len(seen) > 1:
        yield failed("token service", f"challenges name different services: {', '.join(seen)}", observed,
                     "one service")
    elif mismatched:
        yield failed("token service", f"issued tokens are for another audience than {service!r}: {mismatched}",
                     observed, service)
    else:
        yield passed("token service", f"service {service!r}" + (" matches the tokens' audience" if audiences
                                                                  else ""), observed, service)
    bad = facts.get("bad_credentials") or {}
    if "error" in bad and "status" not in bad:
        yield errored("bad credentials", f"token request failed: {bad['error']}", {"token_request": bad})
    elif bad.get("token_issued"):
        yield failed("bad credentials", "the token service issued a token for a nonexistent user and random "
                     "password", {"token_request": bad}, "401 and no token")
    else:
        yield passed("bad credentials", f"no token for bad credentials (HTTP {bad.get('status')})",
                     {"token_request": bad}, "no token")
    active = bool(facts.get("active"))
    uploads = facts.get("upload_attempts") or {}
    yield _judge_token("anonymous token", facts.get("anonymous_token") or {}, uploads.get("anonymous"), active,
                       ANONYMOUS)
    yield _judge_token("pull-only token", facts.get("pull_token") or {}, uploads.get("pull_token"), active,
                       PULL_ONLY)
