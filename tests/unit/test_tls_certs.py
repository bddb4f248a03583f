"""Certificate facts and verification (tlsprobe.certs) on a PKI generated in the test."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlspeer.pki import NOW, Pki, issue, make_pki, sha1_rsa1024_self_signed

from auditor.judge import certs
from auditor.tlsprobe.truststore import load_trust_store


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def test_good_chain_verifies_and_facts_are_recorded(pki: Pki) -> None:
    leaf = pki.leaf()
    facts = certs.chain_facts([leaf.der, pki.intermediate.der], "registry.test",
                              [pki.root.cert], "test store", NOW, "TLSv1.2 Certificate message")
    assert facts["chain_verified_at_scan"] == {"ok": True, "reason": "chain verifies"}
    assert facts["name_matches"] is True
    assert facts["anchors"] == [pki.root.pem]
    first = facts["chain"][0]
    assert first["key_type"] == "EC" and first["key_bits"] == 256 and first["curve"] == "secp256r1"
    assert first["signature_hash"] == "sha256"
    assert first["san_dns"] == ["registry.test", "*.apps.test"]
    assert first["pem"] == leaf.pem


def test_missing_intermediate_and_unknown_root_fail(pki: Pki) -> None:
    leaf = pki.leaf()
    ok, reason = certs.verify_chain([leaf.cert], [pki.root.cert], NOW)
    assert not ok and reason
    other_root = issue("Other Root", ca=True)
    anchors = certs.find_anchors([leaf.cert, pki.intermediate.cert], [other_root.cert])
    assert anchors == []
    ok, reason = certs.verify_chain([leaf.cert, pki.intermediate.cert], anchors, NOW)
    assert (ok, reason) == (False, "no certificate in the trust store issues this chain")


def test_verification_depends_on_the_judging_time(pki: Pki) -> None:
    leaf = pki.leaf(days=30)
    chain = [leaf.cert, pki.intermediate.cert]
    assert certs.verify_chain(chain, [pki.root.cert], NOW)[0]
    ok, reason = certs.verify_chain(chain, [pki.root.cert], NOW + dt.timedelta(days=60))
    assert (not ok and "expired" in reason.lower()) or "valid" in reason.lower()


@pytest.mark.parametrize("host,expected", [
    ("registry.test", True), ("REGISTRY.test.", True), ("x.apps.test", True), ("a.b.apps.test", False),
    ("apps.test", False), ("other.test", False), ("127.0.0.1", False),
])
def test_name_matching(pki: Pki, host: str, expected: bool) -> None:
    assert certs.name_matches(pki.leaf().cert, host) is expected


def test_ip_san_matching(pki: Pki) -> None:
    leaf = pki.leaf(dns=(), ips=("127.0.0.1", "::1"))
    assert certs.name_matches(leaf.cert, "::1") and certs.name_matches(leaf.cert, "[::1]")
    assert not certs.name_matches(leaf.cert, "127.0.0.2")
    assert certs.verify_chain([leaf.cert, pki.intermediate.cert], [pki.root.cert], NOW, "127.0.0.1")[0]


def test_rsa_and_sha1_facts(tmp_path: Path) -> None:
    weak = sha1_rsa1024_self_signed(tmp_path)
    facts = certs.cert_properties(weak)
    assert (facts["key_type"], facts["key_bits"], facts["signature_hash"]) == ("RSA", 1024, "sha1")
    assert facts["self_signed"] is True
    assert not certs.verify_chain([weak], [weak], NOW)[0]


def test_unparsable_certificate_is_a_fact_not_an_exception(pki: Pki) -> None:
    facts = certs.chain_facts([b"\x30\x03\x02\x01\x01"], "registry.test", [pki.root.cert], "s", NOW, "x")
    assert "error" in facts["chain"][0]
    assert "chain_verified_at_scan" not in facts


def test_trust_store_with_bundle(tmp_path: Path, pki: Pki) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text(pki.root.pem)
    store, source = load_trust_store(str(bundle))
    assert store[0] == pki.root.cert and source.startswith(str(bundle))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a pem")
    with pytest.raises(ValueError):
        load_trust_store(str(bad))
