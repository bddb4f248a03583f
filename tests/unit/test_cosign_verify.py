"""Cosign verification on signatures made exactly as cosign makes them (lab builders) and on the
real keyless bundle in tests/fixtures/upstream/cosign (verified offline by sigstore-python)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from auditor.judge.cosign import (
    INVALID,
    UNTRUSTED,
    UNVERIFIABLE,
    VALID,
    TrustedKeys,
    reference_matches,
    verify_bundle_keyed,
    verify_legacy,
)
from auditor.judge.sigstore_verify import KeylessVerifier

from .test_content_fake import labcosign as lc
from .test_content_fake import oci, public_pem

TESTDATA = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "cosign"
KEYLESS = TESTDATA / "oci-attestation.sigstore.json"
KEYLESS_DIGEST = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
IDENTITY = {"issuer": "https://github.com/login/oauth", "subject": "cody@soyland.com"}
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
REPO = "myapp/backend"
HOSTS = ["registry.regaudit.test"]


def keys(*private) -> TrustedKeys:
    return TrustedKeys.from_pems((f"key{i}.pub", public_pem(k)) for i, k in enumerate(private))


def layer_of(sig: lc.LegacySignature) -> dict:
    return {"payload_b64": base64.b64encode(sig.payload.data).decode(), "payload_digest": sig.payload.digest,
            "signature": sig.signature_b64}


@pytest.fixture(scope="module")
def trusted() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def other() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_legacy_signature_verifies_with_the_trusted_key(trusted):
    sig = lc.legacy_signature(trusted, f"registry.regaudit.test/{REPO}", DIGEST)
    verdict = verify_legacy(layer_of(sig), DIGEST, REPO, HOSTS, keys(trusted))
    assert verdict.status == VALID, verdict.reason


def test_one_of_several_trusted_keys_is_enough(trusted, other):
    sig = lc.legacy_signature(trusted, f"registry.regaudit.test/{REPO}", DIGEST)
    verdict = verify_legacy(layer_of(sig), DIGEST, REPO, HOSTS, keys(other, trusted))
    assert verdict.status == VALID and verdict.key == "key1.pub"


def test_signature_over_another_digest_is_invalid(trusted):
    sig = lc.legacy_signature(trusted, f"registry.regaudit.test/{REPO}", DIGEST, payload_digest=OTHER)
    verdict = verify_legacy(layer_of(sig), DIGEST, REPO, HOSTS, keys(trusted))
    assert verdict.status == INVALID
    assert OTHER in verdict.reason and "another image" in verdict.reason


def test_tampered_payload_is_rejected(trusted):
    sig = lc.legacy_signature(trusted, f"registry.regaudit.test/{REPO}", OTHER)
    forged = sig.payload.data.replace(OTHER.encode(), DIGEST.encode())
    layer = {"payload_b64": base64.b64encode(forged).decode(), "signature": sig.signature_b64}
    verdict = verify_legacy(layer, DIGEST, REPO, HOSTS, keys(trusted))
    assert verdict.status == UNTRUSTED and "altered" in verdict.reason
    layer["payload_digest"] = sig.payload.digest  # the blob's own digest no longer matches either
    assert verify_legacy(layer, DIGEST, REPO, HOSTS, keys(trusted)).status == INVALID


def test_another_keys_signature_is_untrusted(trusted, other):
    sig = lc.legacy_signature(other, f"registry.regaudit.test/{REPO}", DIGEST)
    verdict = verify_legacy(layer_of(sig), DIGEST, REPO, HOSTS, keys(trusted))
    assert verdict.status == UNTRUSTED and "untrusted key" in verdict.reason


def test_no_trusted_key_cannot_decide(trusted):
    sig = lc.legacy_signature(trusted, f"registry.regaudit.test/{REPO}", DIGEST)
    assert verify_legacy(layer_of(sig), DIGEST, REPO, HOSTS, TrustedKeys()).status == UNVERIFIABLE


@pytest.mark.parametrize("reference, ok", [
    (f"registry.regaudit.test/{REPO}", True),
    (f"registry.regaudit.test:443/{REPO}", True),
    (f"alias.example/{REPO}", False),
    ("registry.regaudit.test/myapp/frontend", False),
    (f"registry.regaudit.test/{REPO}:v1", True),
])
def test_docker_reference_names_this_repository_on_a_known_host(reference, ok):
    assert reference_matches(reference, REPO, HOSTS)[0] is ok
    assert reference_matches(f"alias.example/{REPO}", REPO, [*HOSTS, "alias.example"])[0]


def test_payload_keys_match_case_insensitively(trusted):
    payload = json.dumps({"critical": {"Identity": {"Docker-Reference": f"registry.regaudit.test/{REPO}"},
                                       "Image": {"Docker-manifest-digest": DIGEST},
                                       "Type": "cosign container image signature"}, "optional": None}).encode()
    signature = trusted.sign(payload, ec.ECDSA(hashes.SHA256()))
    layer = {"payload_b64": base64.b64encode(payload).decode(), "signature": base64.b64encode(signature).decode()}
    assert verify_legacy(layer, DIGEST, REPO, HOSTS, keys(trusted)).status == VALID


@pytest.mark.parametrize("kind", ["rsa", "ed25519", "p384"])
def test_rsa_ed25519_and_other_curves(kind):
    payload = lc.simple_signing_payload(f"registry.regaudit.test/{REPO}", DIGEST)
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        signature = key.sign(payload)
    else:
        key = ec.generate_private_key(ec.SECP384R1())
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    layer = {"payload_b64": base64.b64encode(payload).decode(), "signature": base64.b64encode(signature).decode()}
    assert verify_legacy(layer, DIGEST, REPO, HOSTS, keys(key)).status == VALID


def test_unloadable_pem_is_reported_not_raised():
    loaded = TrustedKeys.from_pems([("bad.pub", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")])
    assert not loaded and "bad.pub" in loaded.errors[0]


def _bundle(key, digest: str) -> dict:
    subject = oci.Blob(b'{"schemaVersion":2}', oci.OCI_MANIFEST, digest=digest)
    return json.loads(lc.bundle_signature(key, subject, "2026-11-28T00:00:00Z").bundle.data)


def test_key_signed_bundle_verifies_and_names_the_digest(trusted):
    verdict = verify_bundle_keyed(_bundle(trusted, DIGEST), DIGEST, keys(trusted))
    assert verdict.status == VALID, verdict.reason
    other_digest = verify_bundle_keyed(_bundle(trusted, OTHER), DIGEST, keys(trusted))
    assert other_digest.status == INVALID and OTHER in other_digest.reason


def test_bundle_by_an_untrusted_key_is_named_by_its_hint(trusted, other):
    verdict = verify_bundle_keyed(_bundle(other, DIGEST), DIGEST, keys(trusted))
    assert verdict.status == UNTRUSTED and "publicKey.hint" in verdict.reason


def test_tampered_bundle_envelope_is_invalid(trusted):
    bundle = _bundle(trusted, DIGEST)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://evil.example/v1"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    verdict = verify_bundle_keyed(bundle, DIGEST, keys(trusted))
    assert verdict.status == INVALID and "altered" in verdict.reason


def test_real_keyless_bundle_verifies_offline_with_the_identity_policy():
    text = KEYLESS.read_text()
    verdict = KeylessVerifier(None, [IDENTITY]).verify(text, KEYLESS_DIGEST)
    assert verdict.status == VALID, verdict.reason
    assert "cody@soyland.com" in verdict.key


def test_real_keyless_bundle_with_another_identity_is_untrusted():
    text = KEYLESS.read_text()
    verdict = KeylessVerifier(None, [{"issuer": IDENTITY["issuer"], "subject": "mallory@example.com"}]).verify(
        text, KEYLESS_DIGEST)
    assert verdict.status == UNTRUSTED


def test_real_keyless_bundle_for_another_digest_is_invalid():
    verdict = KeylessVerifier(None, [IDENTITY]).verify(KEYLESS.read_text(), DIGEST)
    assert verdict.status == INVALID and KEYLESS_DIGEST in verdict.reason


def test_keyless_without_identity_policy_cannot_decide():
    assert KeylessVerifier(None, []).verify(KEYLESS.read_text(), KEYLESS_DIGEST).status == UNVERIFIABLE


def test_trusted_root_given_as_json_is_used():
    """An air-gapped site passes the production root as a file: the same bundle verifies with it,
    and does not with the staging root (another Fulcio/Rekor)."""
    import sigstore

    store = Path(sigstore.__file__).parent / "_store"
    prod = store / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"
    staging = store / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / "trusted_root.json"
    verdict = KeylessVerifier(prod.read_text(), [IDENTITY]).verify(KEYLESS.read_text(), KEYLESS_DIGEST)
    assert verdict.status == VALID, verdict.reason
    wrong_root = KeylessVerifier(staging.read_text(), [IDENTITY]).verify(KEYLESS.read_text(), KEYLESS_DIGEST)
    assert wrong_root.status in (INVALID, UNTRUSTED)
    broken = KeylessVerifier('{"mediaType": "nonsense"}', [IDENTITY]).verify(KEYLESS.read_text(), KEYLESS_DIGEST)
    assert broken.status == UNVERIFIABLE


def test_public_pem_roundtrip_is_pkix(trusted):
    pem = public_pem(trusted)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert serialization.load_pem_public_key(pem.encode())
