"""http.hsts and tls.ocsp-stapling on recorded evidence, and the status_request wire format."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from auditor.checkapi import Evidence, ProbeRecord
from auditor.model import Status
from auditor.plugins import load_checks
from auditor.tlsprobe import records as rec
from auditor.tlsprobe.records import WireError

NOW = dt.datetime(2026, 12, 4, 5, 0, tzinfo=dt.UTC)


def _judge(check_id: str, probe: str, value: object, **params: object) -> list:
    item = load_checks()[check_id]
    ev = Evidence({probe: ProbeRecord(probe, "ok", value)}, NOW)
    return list(item.judge(ev, {**item.meta.params, **params}))


def _headers(anonymous: dict | None, responses: list[dict] | None = None, scheme: str = "https") -> dict:
    facts: dict = {"scheme": scheme, "anonymous": {"method": "GET", "path": "/v2/", "status": 401,
                                                    "headers": anonymous or {}},
                   "responses": [], "authenticated": False}
    if responses is not None:
        facts["authenticated"] = True
        facts["responses"] = [{"method": "GET", "path": "/v2/", "status": 200, "headers": h} for h in responses]
    return facts


@pytest.mark.parametrize(("header", "status", "needle"), [
    ("max-age=63072000", Status.PASS, "max-age 63072000"),
    ('max-age="31536000"; includeSubDomains', Status.PASS, "max-age 31536000"),
    ("max-age=300", Status.FAIL, "below the minimum 31536000"),
    ("includeSubDomains", Status.FAIL, "without a valid max-age"),
    (None, Status.FAIL, "no Strict-Transport-Security"),
])
def test_hsts_judges_the_anonymous_answer(header: str | None, status: Status, needle: str) -> None:
    outcomes = _judge("http.hsts", "http.registry-headers",
                      _headers({"strict-transport-security": header} if header else {}))
    assert [o.status for o in outcomes] == [status] and needle in outcomes[0].message


def test_hsts_judges_every_answer_and_the_first_header_only() -> None:
    good = {"strict-transport-security": "max-age=63072000"}
    outcomes = _judge("http.hsts", "http.registry-headers",
                      _headers(good, [good, {"strict-transport-security": ["max-age=10", "max-age=63072000"]}]))
    assert [o.status for o in outcomes] == [Status.PASS, Status.PASS, Status.FAIL]
    assert outcomes[2].subject == "GET /v2/ (authenticated)"


def test_hsts_params_and_plain_http() -> None:
    sub = _judge("http.hsts", "http.registry-headers", _headers({"strict-transport-security": "max-age=63072000"}),
                 require_include_subdomains=True)
    assert sub[0].status is Status.FAIL and "includeSubDomains" in sub[0].message
    plain = _judge("http.hsts", "http.registry-headers", _headers({}, scheme="http"))
    assert plain[0].status is Status.FAIL and "plain http" in plain[0].message


def _scan(stapling: dict | None) -> dict:
    chain: dict = {"auth": "ECDSA", "chain": []}
    if stapling is not None:
        chain["ocsp_stapling"] = stapling
    return {"host": "registry.test", "port": 443, "addresses": [
        {"address": "10.0.0.10", "protocols": {"TLSv1.2": True}, "certificates": [chain]}]}


GOOD = {"asked_in": "TLSv1.2", "status_request_echoed": True, "stapled": True, "responder_urls": ["http://ocsp/"],
        "response": {"response_status": "SUCCESSFUL", "cert_status": "GOOD", "about_leaf": True,
                     "this_update": "2026-12-04T04:00:00+00:00", "next_update": "2026-12-04T06:00:00+00:00",
                     "der_b64": "AAAA"}}


@pytest.mark.parametrize(("facts", "status", "needle"), [
    (GOOD, Status.PASS, "staples a good OCSP response"),
    ({**GOOD, "response": {**GOOD["response"], "next_update": "2026-12-04T04:30:00+00:00"}}, Status.FAIL, "stale"),
    ({**GOOD, "response": {**GOOD["response"], "cert_status": "REVOKED"}}, Status.FAIL, "REVOKED"),
    ({**GOOD, "response": {**GOOD["response"], "about_leaf": False}}, Status.FAIL, "another certificate"),
    ({**GOOD, "response": {**GOOD["response"], "this_update": "2026-12-05T00:00:00+00:00"}}, Status.FAIL, "future"),
    ({**GOOD, "response": {"response_status": "TRY_LATER"}}, Status.FAIL, "TRY_LATER"),
    ({"asked_in": "TLSv1.2", "status_request_echoed": False, "stapled": False, "responder_urls": []}, Status.FAIL,
     "names no OCSP responder"),
    ({"asked_in": "TLSv1.2", "status_request_echoed": True, "stapled": False, "responder_urls": ["http://o/"]},
     Status.FAIL, "no CertificateStatus"),
    ({"asked_in": None, "undecided": "TLS 1.3 only"}, Status.ERROR, "could not tell"),
    (None, Status.ERROR, "older regaudit"),
])
def test_ocsp_stapling_judgement(facts: dict | None, status: Status, needle: str) -> None:
    outcomes = _judge("tls.ocsp-stapling", "tls.scan", _scan(facts))
    assert [o.status for o in outcomes] == [status], outcomes
    assert needle in outcomes[0].message
    assert "der_b64" not in str(outcomes[0].observed)


def test_ocsp_stapling_not_required_warns() -> None:
    facts = {"asked_in": "TLSv1.2", "status_request_echoed": False, "stapled": False, "responder_urls": []}
    outcomes = _judge("tls.ocsp-stapling", "tls.scan", _scan(facts), required=False)
    assert [o.status for o in outcomes] == [Status.WARN]


def test_status_request_extension_and_certificate_status_message() -> None:
    hello = rec.build_client_hello("TLSv1.2", [0xC02C], "registry.test", status_request=True)
    assert struct.pack("!HHBHH", rec.EXT_STATUS_REQUEST, 5, 1, 0, 0) in hello
    assert struct.pack("!HHBHH", rec.EXT_STATUS_REQUEST, 5, 1, 0, 0) not in rec.build_client_hello(
        "TLSv1.2", [0xC02C], "registry.test")
    body = b"\x01" + len(b"der").to_bytes(3, "big") + b"der"
    assert rec.parse_certificate_status(body) == b"der"
    with pytest.raises(WireError):
        rec.parse_certificate_status(b"\x02\x00\x00\x00")
    with pytest.raises(WireError):
        rec.parse_certificate_status(body + b"x")
