"""auth.*, net.registry-port-exposed and http.nosniff judged on recorded evidence."""

from __future__ import annotations

from typing import Any

from auditor.checkapi import ProbeRecord
from auditor.model import Status

from .helpers import judge, records

BASIC = [{"scheme": "basic", "params": {"realm": "Registry"}}]
API = {"docker-distribution-api-version": "registry/2.0"}


def _anonymous(statuses: list[int], challenges: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    paths = ["/v2/", "/v2/_catalog", "/v2/team/app/manifests/v1"]
    facts = {"reference": {"repository": "team/app", "tag": "v1", "source": "authenticated catalog walk"},
             "catalog_walk": {"ok": True}, "credentials_given": True,
             "requests": [{"method": "GET", "path": p, "status": s, "challenges": BASIC if challenges is None
                           else challenges, "headers": {}} for p, s in zip(paths, statuses, strict=True)]}
    facts.update(extra)
    return facts


def _statuses(check_id: str, evidence: dict[str, ProbeRecord]) -> dict[str, Status]:
    return {r.subject: r.status for r in judge(check_id, evidence)}


def test_anonymous_denied_passes_on_401_challenges_and_fails_open_answers() -> None:
    assert set(_statuses("auth.anonymous-denied", records(auth__anonymous=_anonymous([401] * 3))).values()) == {
        Status.PASS}
    found = _statuses("auth.anonymous-denied", records(auth__anonymous=_anonymous([200, 200, 200], challenges=[])))
    assert set(found.values()) == {Status.FAIL}


def test_anonymous_denied_fails_401_without_challenge_and_403() -> None:
    facts = _anonymous([401, 403, 404])
    facts["requests"][0]["challenges"] = []
    results = judge("auth.anonymous-denied", records(auth__anonymous=facts))
    assert [r.status for r in results] == [Status.FAIL, Status.FAIL, Status.FAIL]
    assert "without a WWW-Authenticate" in results[0].message
    assert "403" in results[1].message


def test_pull_on_a_probe_name_when_the_walk_failed_is_an_error_not_a_pass() -> None:
    facts = _anonymous([401] * 3, catalog_walk={"ok": False, "error": "authentication failed"},
                       reference={"repository": "regaudit-probe/x", "tag": "latest", "source": "probe name"})
    results = judge("auth.anonymous-denied", records(auth__anonymous=facts))
    assert [r.status for r in results] == [Status.PASS, Status.PASS, Status.ERROR]
    assert "authentication failed" in results[2].message


def test_without_credentials_the_probe_name_pull_passes_and_says_so() -> None:
    facts = _anonymous([401] * 3, credentials_given=False, catalog_walk=None,
                       reference={"repository": "regaudit-probe/x", "tag": "latest",
                                  "source": "probe name (no credentials given)"})
    results = judge("auth.anonymous-denied", records(auth__anonymous=facts))
    assert results[2].status is Status.PASS and "give credentials" in results[2].message


def _endpoint(port: int, state: str, http: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    entry = {"address": "10.0.0.10", "family": "ipv4", "port": port, "state": state, "detail": state, **extra}
    if http is not None:
        entry["http"] = http
    return entry


def _plain(*endpoints: dict[str, Any], registry: list[dict[str, Any]] | None = None) -> dict[str, ProbeRecord]:
    return records(auth__plaintext={"endpoints": list(endpoints)},
                   net__registry_port={"addresses": registry or [], "families": ["ipv4", "ipv6"], "port": 5000})


def _fix_name(evidence: dict[str, ProbeRecord]) -> dict[str, ProbeRecord]:
    """helpers.records maps '__' to '.', so net__registry_port becomes net.registry_port: rename."""
    out = {}
    for name, record in evidence.items():
        fixed = name.replace("registry_port", "registry-port")
        out[fixed] = ProbeRecord(fixed, record.state, record.value)
    return out


def test_challenge_over_tls_redirect_and_closed_pass() -> None:
    evidence = _fix_name(_plain(
        _endpoint(80, "open", {"status": 301, "headers": {"location": "https://registry.example.com/v2/"},
                               "challenges": []}),
        _endpoint(8080, "closed")))
    assert set(_statuses("auth.challenge-over-tls", evidence).values()) == {Status.PASS}


def test_challenge_over_tls_fails_basic_over_plaintext_and_plaintext_registry_port() -> None:
    evidence = _fix_name(_plain(
        _endpoint(80, "open", {"status": 401, "headers": {}, "challenges": BASIC}),
        registry=[_endpoint(5000, "open", {"status": 200, "headers": API, "challenges": []})]))
    results = judge("auth.challenge-over-tls", evidence)
    assert [r.status for r in results] == [Status.FAIL, Status.FAIL]
    assert "Basic challenge" in results[0].message and "registry port 5000" in results[1].message


def test_challenge_over_tls_errors_on_garbage_and_when_registry_port_evidence_failed() -> None:
    evidence = _fix_name(_plain(_endpoint(80, "open", http_error="RemoteProtocolError: garbage")))
    evidence["net.registry-port"] = ProbeRecord("net.registry-port", "error", reason="cannot resolve")
    results = judge("auth.challenge-over-tls", evidence)
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]
    assert "cannot resolve" in results[1].message


def _ports(*entries: dict[str, Any], families: tuple[str, ...] = ("ipv4", "ipv6")) -> dict[str, ProbeRecord]:
    return _fix_name(records(net__registry_port={"addresses": list(entries), "families": list(families),
                                                  "port": 5000}))


def test_registry_port_not_reachable_passes_on_every_state_that_means_unreachable() -> None:
    evidence = _ports(_endpoint(5000, "closed"), _endpoint(5000, "filtered"),
                      {**_endpoint(5000, "unreachable"), "address": "fd00::10", "family": "ipv6"})
    results = judge("net.registry-port-exposed", evidence)
    assert [r.status for r in results] == [Status.PASS] * 3
    assert "[fd00::10]:5000 (ipv6)" in [r.subject for r in results]


def test_registry_port_open_says_what_answers() -> None:
    evidence = _ports(
        _endpoint(5000, "open", {"status": 200, "headers": API}, registry_answers=True, auth_required=False),
        {**_endpoint(5000, "open", {"status": 401, "headers": API}, registry_answers=True, auth_required=True),
         "address": "fd00::10", "family": "ipv6"})
    results = judge("net.registry-port-exposed", evidence)
    assert [r.status for r in results] == [Status.FAIL, Status.FAIL]
    assert "WITHOUT authentication" in results[0].message
    assert "demands authentication" in results[1].message


def test_registry_port_error_state_and_missing_family_note() -> None:
    results = judge("net.registry-port-exposed", _ports(_endpoint(5000, "error"), families=("ipv4",)))
    assert [r.status for r in results] == [Status.ERROR]
    results = judge("net.registry-port-exposed", _ports(_endpoint(5000, "closed"), families=("ipv4",)))
    assert results[0].status is Status.PASS and "no ipv6 address" in results[0].message


def _headers(**facts: Any) -> dict[str, ProbeRecord]:
    return _fix_name(records(http__registry_headers=facts))


def test_nosniff_on_the_registry_response() -> None:
    ok = {"method": "GET", "path": "/v2/", "status": 200, "headers": {**API, "x-content-type-options": "nosniff"}}
    assert _statuses("http.nosniff", {"http.registry-headers": ProbeRecord(
        "http.registry-headers", "ok", {"responses": [ok], "authenticated": True})}) == {"GET /v2/": Status.PASS}
    bad = {**ok, "headers": API}
    [result] = judge("http.nosniff", {"http.registry-headers": ProbeRecord(
        "http.registry-headers", "ok", {"responses": [bad], "authenticated": False, "open_registry": True})})
    assert result.status is Status.FAIL and "open" in result.message


def test_nosniff_without_credentials_is_an_error_never_a_pass() -> None:
    facts = {"responses": [], "anonymous": {"status": 401, "headers": {"x-content-type-options": "nosniff"}},
             "unjudged_reason": "needs credentials: anonymous GET /v2/ answered 401"}
    [result] = judge("http.nosniff", {"http.registry-headers": ProbeRecord("http.registry-headers", "ok", facts)})
    assert result.status is Status.ERROR and "needs credentials" in result.message


def test_nosniff_on_a_non_2xx_authenticated_answer_is_an_error() -> None:
    facts = {"responses": [{"method": "GET", "path": "/v2/_catalog?n=1", "status": 401, "headers": {}}],
             "authenticated": True}
    [result] = judge("http.nosniff", {"http.registry-headers": ProbeRecord("http.registry-headers", "ok", facts)})
    assert result.status is Status.ERROR


def _token(**overrides: Any) -> dict[str, ProbeRecord]:
    facts: dict[str, Any] = {
        "realm": "https://auth.example.com/token", "realm_scheme": "https", "service": "registry.example.com",
        "services_seen": ["registry.example.com"], "active": False,
        "bad_credentials": {"status": 401, "token_issued": False},
        "anonymous_token": {"status": 200, "token_issued": True, "audience": "registry.example.com",
                            "actions_granted": []},
        "pull_token": {"status": 200, "token_issued": True, "audience": "registry.example.com",
                       "actions_granted": ["pull"]},
    }
    facts.update(overrides)
    return {"auth.token": ProbeRecord("auth.token", "ok", facts)}


def test_token_service_passive_pass_with_untested_uploads_skipped() -> None:
    found = _statuses("auth.token-service", _token())
    assert found == {"token realm": Status.PASS, "token service": Status.PASS, "bad credentials": Status.PASS,
                     "anonymous token": Status.SKIP, "pull-only token": Status.SKIP}


def test_token_service_failures() -> None:
    found = _statuses("auth.token-service", _token(
        realm="http://auth.example.com/token", realm_scheme="http",
        bad_credentials={"status": 200, "token_issued": True},
        anonymous_token={"status": 200, "token_issued": True, "audience": "other", "actions_granted": ["push"]}))
    assert found["token realm"] is Status.FAIL
    assert found["token service"] is Status.FAIL
    assert found["bad credentials"] is Status.FAIL
    assert found["anonymous token"] is Status.FAIL


def test_token_service_active_results_and_refused_credentials() -> None:
    uploads = {"anonymous": {"attempted": True, "status": 401, "upload_started": False},
               "pull_token": {"attempted": True, "status": 202, "upload_started": True,
                              "cleanup": {"done": True, "status": 204}}}
    found = _statuses("auth.token-service", _token(active=True, upload_attempts=uploads))
    assert found["anonymous token"] is Status.PASS and found["pull-only token"] is Status.FAIL
    refused = _statuses("auth.token-service", _token(pull_token={"status": 401, "token_issued": False}))
    assert refused["pull-only token"] is Status.ERROR


def test_token_service_inconsistent_services() -> None:
    found = _statuses("auth.token-service", _token(services_seen=["a", "b"]))
    assert found["token service"] is Status.FAIL
