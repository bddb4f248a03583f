"""The outside auth/header probes at the HTTP level, with httpx.MockTransport as the network.

A scripted registry (and token service, and "other hosts") records every request it receives,
so the tests prove where credentials went and where they did not; the gathered evidence is
then judged by the real checks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from auditor.checkapi import ProbeRecord
from auditor.credentials import Credentials, Secret
from auditor.gather import Gatherer
from auditor.model import Status
from auditor.plugins import load_probes
from auditor.redact import redact
from auditor.target import Target

from .helpers import judge

PASSWORD = "Mock-Pa55word-for-leak-test"
CREDS = Credentials("auditor", Secret(PASSWORD), "test")
BASIC = "Basic " + base64.b64encode(f"auditor:{PASSWORD}".encode()).decode()
TARGET = "https://registry.example.com"
Handler = Callable[[httpx.Request], Any]


class MockGatherer(Gatherer):
    """The real gatherer, with a MockTransport client instead of the network."""

    def __init__(self, handler: Handler, target: Target, credentials: Credentials | None, deadline: float) -> None:
        super().__init__(load_probes(), target, credentials, deadline)
        self._handler = handler

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=httpx.MockTransport(self._handler), follow_redirects=False)
        return self._client


def gather(handler: Handler, names: list[str], creds: Credentials | None = CREDS, deadline: float = 20.0,
           options: dict[str, Any] | None = None, url: str = TARGET) -> dict[str, ProbeRecord]:
    target = Target(url=url, options=options or {"active": False})
    return asyncio.run(MockGatherer(handler, target, creds, deadline).gather(names))


def _jwt(claims: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{body}.c2ln"


class FakeRegistry:
    """A registry behind Basic or Bearer auth, a token service, and a log of every request."""

    def __init__(self, scheme: str = "basic", realm: str = "https://auth.example.com/token",
                 anonymous_push: bool = False, nosniff: bool = True, anonymous_delete: bool = False) -> None:
        self.scheme = scheme
        self.anonymous_delete = anonymous_delete
        self.realm = realm
        self.anonymous_push = anonymous_push
        self.nosniff = nosniff
        self.log: list[tuple[str, str, str | None]] = []
        self.uploads: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        self.log.append((request.method, str(request.url), auth))
        if request.url.host == "auth.example.com":
            return self._token(request, auth)
        if request.url.host != "registry.example.com":
            return httpx.Response(200, json={"stolen": True})
        return self._registry(request, auth)

    def _challenge(self, scope: str = "") -> dict[str, str]:
        if self.scheme == "basic":
            return {"WWW-Authenticate": 'Basic realm="Registry"'}
        extra = f',scope="{scope}"' if scope else ""
        return {"WWW-Authenticate": f'Bearer realm="{self.realm}",service="registry.example.com"{extra}'}

    def _token(self, request: httpx.Request, auth: str | None) -> httpx.Response:
        scopes = request.url.params.get_list("scope")
        if auth is not None and auth != BASIC:
            return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
        access = []
        for scope in scopes:
            typ, name, actions = scope.split(":")
            wanted = actions.split(",")
            if auth is None:
                allowed = ["pull", "push"] if self.anonymous_push and typ == "repository" else []
                allowed += ["delete"] if self.anonymous_delete and typ == "repository" else []
            else:
                allowed = ["pull"] if typ == "repository" else ["*"]
            granted = [a for a in wanted if a in allowed or "*" in allowed]
            if granted:
                access.append({"type": typ, "name": name, "actions": granted})
        sub = "auditor" if auth else ""
        token = _jwt({"aud": "registry.example.com", "sub": sub, "access": access})
        return httpx.Response(200, json={"token": token, "expires_in": 60})

    def _allowed(self, request: httpx.Request, auth: str | None, action: str) -> bool:
        if self.scheme == "basic":
            return auth == BASIC
        if not auth or not auth.startswith("Bearer "):
            return False
        claims = json.loads(base64.urlsafe_b64decode(auth.split(".")[1] + "=="))
        if request.url.path == "/v2/":
            return True
        return any(action in entry["actions"] or "*" in entry["actions"] for entry in claims["access"])

    def _registry(self, request: httpx.Request, auth: str | None) -> httpx.Response:
        path = request.url.path
        headers = {"Docker-Distribution-Api-Version": "registry/2.0"}
        if self.nosniff:
            headers["X-Content-Type-Options"] = "nosniff"
        action = {"POST": "push", "DELETE": "delete"}.get(request.method, "pull")
        if not self._allowed(request, auth, action):
            return httpx.Response(401, headers={**headers, **self._challenge()}, json={"errors": []})
        if path == "/v2/":
            return httpx.Response(200, headers=headers, json={})
        if path == "/v2/_catalog":
            return httpx.Response(200, headers=headers, json={"repositories": ["team/app", "team/db"]})
        if path == "/v2/team/app/tags/list":
            return httpx.Response(200, headers=headers, json={"name": "team/app", "tags": ["sha256-ab.sig", "v1"]})
        if request.method == "DELETE" and path.startswith("/v2/regaudit-probe/upload-check/blobs/uploads/"):
            self.uploads.discard(path.rsplit("/", 1)[1])
            return httpx.Response(204, headers=headers)
        if request.method == "POST" and path == "/v2/regaudit-probe/upload-check/blobs/uploads/":
            self.uploads.add("u-1")
            return httpx.Response(202, headers={**headers, "Location": path + "u-1"})
        return httpx.Response(404, headers=headers, json={"errors": []})


def _value(records: dict[str, ProbeRecord], name: str) -> Any:
    record = records[name]
    assert record.state == "ok", record.reason
    return record.value


def test_basic_registry_walks_the_catalog_and_denies_anonymous_requests() -> None:
    fake = FakeRegistry("basic")
    records = gather(fake, ["auth.anonymous", "http.registry-headers"])
    facts = _value(records, "auth.anonymous")
    assert facts["reference"] == {"repository": "team/app", "tag": "v1", "source": "authenticated catalog walk"}
    assert [r["status"] for r in facts["requests"]] == [401, 401, 401]
    assert facts["requests"][2]["path"] == "/v2/team/app/manifests/v1"
    # Anonymous requests carried nothing; credentials only ever went to the target over https.
    anonymous = [entry for entry in fake.log if entry[2] is None]
    assert {url for _, url, _ in anonymous} >= {f"{TARGET}/v2/_catalog", f"{TARGET}/v2/team/app/manifests/v1"}
    assert all(url.startswith(TARGET + "/") for _, url, auth in fake.log if auth)
    assert [r.status for r in judge("auth.anonymous-denied", records)] == [Status.PASS] * 3
    assert [r.status for r in judge("http.nosniff", records)] == [Status.PASS, Status.PASS]


def test_missing_nosniff_on_the_authenticated_response_fails_and_without_credentials_errors() -> None:
    records = gather(FakeRegistry("basic", nosniff=False), ["http.registry-headers"])
    assert {r.status for r in judge("http.nosniff", records)} == {Status.FAIL}
    records = gather(FakeRegistry("basic"), ["http.registry-headers"], creds=None)
    [result] = judge("http.nosniff", records)
    assert result.status is Status.ERROR and "needs credentials" in result.message


def test_bearer_realm_outside_the_domain_gets_no_credentials() -> None:
    fake = FakeRegistry("bearer", realm="https://auth.example.com.evil.net/token")
    records = gather(fake, ["auth.anonymous", "http.registry-headers"])
    assert [url for _, url, _ in fake.log if "evil.net" in url] == []

    facts = _value(records, "auth.anonymous")
    assert "outside the target's domain" in facts["catalog_walk"]["error"]
    assert "outside the target's domain" in _value(records, "http.registry-headers")["unjudged_reason"]


def test_plaintext_realm_gets_no_credentials_and_fails_the_token_check() -> None:
    fake = FakeRegistry("bearer", realm="http://auth.example.com/token")
    records = gather(fake, ["auth.anonymous", "auth.token"])
    assert not [url for _, url, auth in fake.log if url.startswith("http://") and auth == BASIC]
    results = judge("auth.token-service", records)
    realm = next(r for r in results if r.subject == "token realm")
    assert realm.status is Status.FAIL
    pull = next(r for r in results if r.subject == "pull-only token")
    assert pull.status is Status.SKIP and "not https" in pull.message


def test_sound_token_service_passes_passively_and_actively() -> None:
    fake = FakeRegistry("bearer")
    records = gather(fake, ["auth.anonymous", "auth.token"])
    by_subject = {r.subject: r for r in judge("auth.token-service", records)}
    assert by_subject["token realm"].status is Status.PASS
    assert by_subject["token service"].status is Status.PASS
    assert by_subject["bad credentials"].status is Status.PASS
    assert by_subject["anonymous token"].status is Status.SKIP and "--active" in by_subject["anonymous token"].message
    assert not [m for m, _, _ in fake.log if m in ("POST", "DELETE")], "an upload was tried without --active"
    active = gather(FakeRegistry("bearer"), ["auth.anonymous", "auth.token"], options={"active": True})
    statuses = {r.subject: r.status for r in judge("auth.token-service", active)}
    assert statuses == dict.fromkeys(("token realm", "token service", "bad credentials", "anonymous token",
                                      "pull-only token"), Status.PASS)


def test_anonymous_push_fails_passively_and_the_active_upload_is_cancelled() -> None:
    records = gather(FakeRegistry("bearer", anonymous_push=True), ["auth.anonymous", "auth.token"])
    anon = next(r for r in judge("auth.token-service", records) if r.subject == "anonymous token")
    assert anon.status is Status.FAIL and "push" in anon.message and "--active" in anon.message
    fake = FakeRegistry("bearer", anonymous_push=True, anonymous_delete=True)
    records = gather(fake, ["auth.anonymous", "auth.token"], options={"active": True})
    anon = next(r for r in judge("auth.token-service", records) if r.subject == "anonymous token")
    assert anon.status is Status.FAIL and "started an upload" in anon.message
    assert "was cancelled" in anon.message and "NOT" not in anon.message
    deletes = [(m, u, a is not None) for m, u, a in fake.log if m == "DELETE"]
    # The push token may not DELETE (distribution wants the delete action): a delete-scope token did.
    assert deletes == [("DELETE", f"{TARGET}/v2/regaudit-probe/upload-check/blobs/uploads/u-1", True)] * 2
    assert fake.uploads == set(), "the upload session the probe started was left behind"


def test_an_upload_that_cannot_be_deleted_is_reported_not_cancelled() -> None:
    fake = FakeRegistry("bearer", anonymous_push=True)
    records = gather(fake, ["auth.anonymous", "auth.token"], options={"active": True})
    anon = next(r for r in judge("auth.token-service", records) if r.subject == "anonymous token")
    assert anon.status is Status.FAIL and "NOT cancelled" in anon.message and "delete action" in anon.message
    cleanup = records["auth.token"].value["upload_attempts"]["anonymous"]["cleanup"]
    assert [a["with"] for a in cleanup["attempts"]] == [
        "the token that started it", "anonymous delete-scope token", "the given credentials delete-scope token"]
    assert fake.uploads == {"u-1"}


def test_offorigin_redirect_is_never_followed() -> None:
    log: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        log.append(str(request.url))
        if request.url.host != "registry.example.com":
            return httpx.Response(200)
        if request.url.path == "/v2/":
            return httpx.Response(302, headers={"Location": "/v2/x"})  # same origin: followed
        return httpx.Response(302, headers={"Location": "https://elsewhere.example.net" + request.url.path})

    records = gather(handler, ["auth.anonymous", "http.registry-headers"])
    assert not [u for u in log if "elsewhere" in u]
    results = judge("auth.anonymous-denied", records)
    assert {r.status for r in results} == {Status.ERROR}
    assert "another origin" in results[0].message


class Trickle(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.2)
            yield b"x"


def test_trickling_body_is_bounded_by_the_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    started = time.monotonic()
    records = gather(handler, ["auth.anonymous", "http.registry-headers"], deadline=3.0)
    assert time.monotonic() - started < 5.0
    assert records["auth.anonymous"].state == "error"
    assert {r.status for r in judge("auth.anonymous-denied", records)} == {Status.ERROR}
    assert {r.status for r in judge("http.nosniff", records)} == {Status.ERROR}


def test_ten_megabyte_answer_is_cut_at_the_bound() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}, content=b"\0" * 10_000_000)

    records = gather(handler, ["auth.anonymous"], creds=None)
    facts = _value(records, "auth.anonymous")
    assert all(r["body_truncated"] for r in facts["requests"])


@pytest.mark.parametrize("error", [httpx.ConnectError("reset by peer"), httpx.RemoteProtocolError("garbage"),
                                   httpx.ReadTimeout("slow")])
def test_network_failures_become_error_results(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    records = gather(handler, ["auth.anonymous", "http.registry-headers"])
    assert records["auth.anonymous"].state == "error"
    assert type(error).__name__ in records["auth.anonymous"].reason or "timed out" in records["auth.anonymous"].reason
    assert {r.status for r in judge("http.nosniff", records)} == {Status.ERROR}


def test_password_never_reaches_evidence_even_before_redaction() -> None:
    fake = FakeRegistry("bearer", anonymous_push=True)
    records = gather(fake, ["auth.anonymous", "auth.token", "http.registry-headers"], options={"active": True})
    raw = json.dumps({n: r.to_json() for n, r in records.items()})
    assert PASSWORD not in raw
    assert BASIC.split()[1] not in raw
    assert "Bearer ey" not in raw  # tokens are not evidence either
    assert redact(raw, (PASSWORD,)) == raw
