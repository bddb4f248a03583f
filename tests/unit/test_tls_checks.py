"""tls.* checks judged on recorded tls.scan evidence (certificates generated in the test)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.checks import tls
from tlspeer.pki import NOW, Pki, make_pki, sha1_rsa1024_self_signed

from auditor.checkapi import Evidence, ProbeRecord
from auditor.judge.certs import chain_facts
from auditor.judge.suites import describe, lookup
from auditor.model import Status

HARDENED = {"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
TLS13_SUITES = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]


def _suites(names: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        suite = lookup(name)
        assert suite is not None, name
        out.append(describe(suite.code))
    return out


def _address(address: str = "127.0.0.1", protocols: dict[str, Any] | None = None,
             suites: dict[str, list[str]] | None = None, chains: list[dict[str, Any]] | None = None,
             **extra: Any) -> dict[str, Any]:
    entry = {
        "address": address,
        "family": "IPv6" if ":" in address else "IPv4",
        "protocols": protocols or dict(HARDENED),
        "protocol_answers": {},
        "cipher_suites": {v: _suites(n) for v, n in (suites if suites is not None else {
            "TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"], "TLSv1.3": TLS13_SUITES}).items()},
        "enumeration_errors": {},
        "server_preference": {},
        "certificates": chains or [],
        "certificate_error": None,
    }
    entry.update(extra)
    return entry


def _evidence(*addresses: dict[str, Any], now: dt.datetime = NOW, errors: list[str] | None = None) -> Evidence:
    value = {"host": "registry.test", "port": 443, "server_name": "registry.test",
             "addresses": list(addresses), "errors": errors or []}
    return Evidence({"tls.scan": ProbeRecord("tls.scan", "ok", value)}, now)


def _judge(check: Any, ev: Evidence, **params: Any) -> list[Any]:
    merged = dict(check.meta.params) | params
    outcomes = list(check.judge(ev, merged))
    assert outcomes, "a check must yield at least one outcome"
    return outcomes


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def _chain(pki: Pki, **leaf_kwargs: Any) -> dict[str, Any]:
    leaf = pki.leaf(**leaf_kwargs)
    facts = chain_facts([leaf.der, pki.intermediate.der], "registry.test", [pki.root.cert], "test store",
                        NOW, "TLSv1.2 Certificate message")
    facts["auth"] = "ECDSA"
    return facts


# tls.protocols

def test_protocols_pass_on_tls12_and_13_only() -> None:
    [outcome] = _judge(tls.tls_protocols, _evidence(_address()))
    assert outcome.status is Status.PASS
    assert outcome.observed["accepted"] == ["TLSv1.2", "TLSv1.3"]


def test_protocols_fail_lists_accepted_versions_and_suites() -> None:
    weak = dict(HARDENED, **{"TLSv1.0": True, "SSLv3": True})
    suites = {"SSLv3": ["DES-CBC3-SHA"], "TLSv1.0": ["AES128-SHA"], "TLSv1.2": ["AES128-SHA"]}
    [outcome] = _judge(tls.tls_protocols, _evidence(_address(protocols=weak, suites=suites)))
    assert outcome.status is Status.FAIL
    assert "SSLv3, TLSv1.0" in outcome.message
    assert outcome.observed["accepted"] == ["SSLv3", "TLSv1.0", "TLSv1.2", "TLSv1.3"]
    assert outcome.observed["accepted_suites"]["TLSv1.0"] == ["TLS_RSA_WITH_AES_128_CBC_SHA"]


def test_protocols_error_when_a_forbidden_version_is_undecided() -> None:
    protocols = dict(HARDENED, **{"TLSv1.1": "error: timeout after 5.0s"})
    [outcome] = _judge(tls.tls_protocols, _evidence(_address(protocols=protocols)))
    assert outcome.status is Status.ERROR and "TLSv1.1" in outcome.message


def test_protocols_error_when_nothing_is_accepted() -> None:
    protocols = {v: False for v in HARDENED}
    [outcome] = _judge(tls.tls_protocols, _evidence(_address(protocols=protocols, suites={})))
    assert outcome.status is Status.ERROR


def test_protocols_one_outcome_per_address_and_profile_param() -> None:
    ev = _evidence(_address(), _address("::1", protocols=dict(HARDENED, **{"TLSv1.1": True})))
    outcomes = _judge(tls.tls_protocols, ev)
    assert [o.status for o in outcomes] == [Status.PASS, Status.FAIL]
    assert outcomes[1].subject == "registry.test:443 ([::1])"
    lenient = _judge(tls.tls_protocols, ev, allowed_protocols=["TLSv1.1", "TLSv1.2", "TLSv1.3"])
    assert [o.status for o in lenient] == [Status.PASS, Status.PASS]


def test_no_address_is_an_error() -> None:
    for check in (tls.tls_protocols, tls.tls_ciphers, tls.tls_tls13, tls.tls_certificate):
        [outcome] = _judge(check, _evidence(errors=["error: cannot resolve registry.test: nope"]))
        assert outcome.status is Status.ERROR and "cannot resolve" in outcome.message


# tls.ciphers

def test_ciphers_pass_with_the_guides_suites() -> None:
    suites = {"TLSv1.2": ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"], "TLSv1.3": TLS13_SUITES}
    [outcome] = _judge(tls.tls_ciphers, _evidence(_address(suites=suites)))
    assert outcome.status is Status.PASS


def test_ciphers_fail_on_a_suite_outside_the_allowlist_and_profile_can_allow_it() -> None:
    suites = {"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]}
    [outcome] = _judge(tls.tls_ciphers, _evidence(_address(suites=suites)))
    assert outcome.status is Status.FAIL
    assert outcome.observed["violations"] == [{"version": "TLSv1.2", "suite": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                               "code": "0xC02F", "why": ["not in the profile's allowlist"]}]
    allowed = ["ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    [lenient] = _judge(tls.tls_ciphers, _evidence(_address(suites=suites)), allowed_tls12_ciphers=allowed)
    assert lenient.status is Status.PASS


@pytest.mark.parametrize("name,why", [
    ("ECDHE-RSA-AES256-SHA384", "CBC"),
    ("DES-CBC3-SHA", "3DES"),
    ("RC4-SHA", "RC4"),
    ("NULL-SHA256", "NULL"),
    ("EXP-RC4-MD5", "EXPORT"),
    ("AES256-GCM-SHA384", "non-forward-secret"),
    ("ADH-AES256-GCM-SHA384", "anon"),
])
def test_weak_suites_are_never_allowed_even_if_the_profile_lists_them(name: str, why: str) -> None:
    suites = {"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384", name]}
    [outcome] = _judge(tls.tls_ciphers, _evidence(_address(suites=suites)),
                       allowed_tls12_ciphers=["ECDHE-RSA-AES256-GCM-SHA384", name])
    assert outcome.status is Status.FAIL
    assert why in outcome.observed["violations"][0]["why"]


def test_ciphers_judge_tls13_and_sslv2_suites_too() -> None:
    suites = {"TLSv1.3": ["TLS_AES_256_GCM_SHA384", "TLS_SHA256_SHA256"]}
    [outcome] = _judge(tls.tls_ciphers, _evidence(_address(suites=suites)))
    assert outcome.status is Status.FAIL and "TLS_SHA256_SHA256 (TLSv1.3)" in outcome.message
    entry = _address(suites={"TLSv1.2": ["ECDHE-RSA-AES256-GCM-SHA384"]})
    entry["cipher_suites"]["SSLv2"] = [{"code": "0x0700C0", "name": "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
                                        "flags": ["SSLv2"]}]
    [outcome] = _judge(tls.tls_ciphers, _evidence(entry))
    assert outcome.status is Status.FAIL and outcome.observed["violations"][0]["why"] == ["SSLv2"]


def test_incomplete_enumeration_is_an_error_unless_already_failing() -> None:
    entry = _address(enumeration_errors={"TLSv1.2": "error: timeout after 5.0s"})
    [outcome] = _judge(tls.tls_ciphers, _evidence(entry))
    assert outcome.status is Status.ERROR and "timeout" in outcome.message
    entry = _address(suites={"TLSv1.2": ["RC4-SHA"]}, enumeration_errors={"TLSv1.2": "error: timeout"})
    [outcome] = _judge(tls.tls_ciphers, _evidence(entry))
    assert outcome.status is Status.FAIL and outcome.observed["enumeration_errors"]


# tls.tls13

@pytest.mark.parametrize("answer,status", [(True, Status.PASS), (False, Status.FAIL),
                                           ("error: timeout after 5.0s", Status.ERROR)])
def test_tls13(answer: Any, status: Status) -> None:
    [outcome] = _judge(tls.tls_tls13, _evidence(_address(protocols=dict(HARDENED, **{"TLSv1.3": answer}))))
    assert outcome.status is status


# tls.certificate

def test_certificate_pass(pki: Pki) -> None:
    [outcome] = _judge(tls.tls_certificate, _evidence(_address(chains=[_chain(pki)])))
    assert outcome.status is Status.PASS, outcome.message
    assert outcome.subject == "registry.test:443 (127.0.0.1) ECDSA certificate"
    assert outcome.observed["key"] == "EC 256"


def test_certificate_rejudged_at_a_later_time(pki: Pki) -> None:
    chains = [_chain(pki, days=60)]  # issued NOW-10d, so 50 days left at NOW
    [now] = _judge(tls.tls_certificate, _evidence(_address(chains=chains)))
    assert now.status is Status.PASS
    [later] = _judge(tls.tls_certificate, _evidence(_address(chains=chains), now=NOW + dt.timedelta(days=30)))
    assert later.status is Status.FAIL and "days left (minimum 30)" in later.message
    [expired] = _judge(tls.tls_certificate, _evidence(_address(chains=chains), now=NOW + dt.timedelta(days=90)))
    assert expired.status is Status.FAIL and "expired on" in expired.message
    [lenient] = _judge(tls.tls_certificate, _evidence(_address(chains=chains), now=NOW + dt.timedelta(days=30)),
                       min_days_left=10)
    assert lenient.status is Status.PASS


def test_certificate_name_mismatch_and_untrusted(pki: Pki) -> None:
    chain = _chain(pki, dns=("other.test",))
    [outcome] = _judge(tls.tls_certificate, _evidence(_address(chains=[chain])))
    assert outcome.status is Status.FAIL
    assert "registry.test is not in the certificate's subjectAltName" in outcome.message
    untrusted = dict(_chain(pki), anchors=[])
    [outcome] = _judge(tls.tls_certificate, _evidence(_address(chains=[untrusted])))
    assert outcome.status is Status.FAIL and "no certificate in the trust store" in outcome.message


def test_certificate_weak_key_and_sha1(tmp_path: Path) -> None:
    weak = sha1_rsa1024_self_signed(tmp_path)
    from cryptography.hazmat.primitives.serialization import Encoding
    facts = chain_facts([weak.public_bytes(Encoding.DER)], "registry.test", [weak], "bundle", NOW, "x")
    [outcome] = _judge(tls.tls_certificate, _evidence(_address(chains=[facts])))
    assert outcome.status is Status.FAIL
    assert "RSA key of 1024 bits (minimum 2048)" in outcome.message
    assert "signed with sha1" in outcome.message


def test_no_certificate_is_an_error() -> None:
    entry = _address(certificate_error="TLSv1.2 RSA: no Certificate message (timeout after 5.0s)")
    [outcome] = _judge(tls.tls_certificate, _evidence(entry))
    assert outcome.status is Status.ERROR and "no Certificate message" in outcome.message


def test_unreachable_address_is_skipped_only_when_another_was_judged() -> None:
    down = {"address": "fd00::10", "family": "IPv6", "reachable": False,
            "error": "error: unreachable: connect: Network is unreachable"}
    for check in (tls.tls_protocols, tls.tls_ciphers, tls.tls_tls13):
        outcomes = _judge(check, _evidence(_address(), dict(down)))
        assert [o.status for o in outcomes] == [Status.PASS, Status.SKIP]
        assert "Network is unreachable" in outcomes[1].message
        [alone] = _judge(check, _evidence(dict(down)))
        assert alone.status is Status.ERROR
    deadline = {"address": "10.0.0.10", "family": "IPv4", "error": "error: not scanned before the deadline"}
    outcomes = _judge(tls.tls_protocols, _evidence(_address(), deadline))
    assert [o.status for o in outcomes] == [Status.PASS, Status.ERROR]
