"""The lab's cosign signatures are what cosign writes, and verify only when they should.

Verification here uses `cryptography` directly against the PEM public key (what cosign.pub
holds), independently of the lab code that made the signatures.

Goldens, copied from public sources:
- sigstore/sigstore pkg/signature/payload/payload_test.go (commit
  3ac7ff576199c847beccdc73c0e24bbd4c8bb45e), TestMarshalCosign: the exact payload bytes cosign's
  payload.Cosign.MarshalJSON produces.
- jeffhuang4704/just-notes cosign/cosign-traffic.md (commit
  172954a4a6187cf38e5743b73f9ab70e89a54e66): a recorded `cosign sign --key -d` HTTP trace
  (cosign v1.13.1 against Docker Hub) with the payload digest and size (sha256:b671489e...,
  252 bytes), the signature image's config (sha256:85ad8e17..., 247 bytes) and its manifest
  (sha256:7ebe8964..., 558 bytes) as the registry stored them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `lab` package

from lab.content import cosign, oci
from lab.content.gojson import GoMap, marshal

VALID_DIGEST = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"
GOLDEN_NO_CLAIMS = (
    '{"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":'
    '{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},'
    '"type":"cosign container image signature"},"optional":null}'
)
GOLDEN_ATOMIC = (
    '{"critical":{"identity":{"docker-reference":"example.com/atomic/test/image"},"image":'
    '{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},'
    '"type":"cosign container image signature"},"optional":{"creator":"atomic","timestamp":1458239713}}'
)
GOLDEN_ARBITRARY = (
    '{"critical":{"identity":{"docker-reference":"example.com/cosign/test/image"},"image":'
    '{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},'
    '"type":"cosign container image signature"},"optional":{"CamelCase WithSpace":8.314,'
    '"creator":"anyone","some_struct":{"false":true,"foo":"bar","nothing":null}}}'
)
# From the recorded cosign v1.13.1 trace.
TRACE_REFERENCE = "index.docker.io/chihjenhuang/cosign1"
TRACE_IMAGE = "sha256:4c1c50d0ffc614f90b93b07d778028dc765548e823f676fb027f61d281ac380d"
TRACE_PAYLOAD = ("sha256:b671489ededd1a180bd87235bba00fd83354f9c7d13b71d9f8b66a8e52965ebc", 252)
TRACE_CONFIG = ("sha256:85ad8e17d3d7c00664855c638832bd99f32d42542c2d587851410a45a7f60b95", 247)
TRACE_CONFIG_CREATED = "2023-02-17T09:25:33.91047962-08:00"
TRACE_SIGNATURE = ("MEYCIQCPH7NJAIfrB6BZN91dV0o7l/i11muXrvrAh100jDMMhAIhAPsLH0oXb2OPITXRpWBMUd3vHtz5"
                   "Ks5pql2Hr6t/IJXw")
TRACE_MANIFEST = ("sha256:7ebe8964225fa4619b53aa35416ef0246c037e36ddf81776b21b15e1dda2262b", 558)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two key pairs written as the lab writes them: cosign.pub is a PKIX PUBLIC KEY PEM."""
    d = tmp_path_factory.mktemp("cosign")
    paths = {"key": d / "cosign.key", "pub": d / "cosign.pub",
             "other_key": d / "other.key", "other_pub": d / "other.pub"}
    cosign.generate_keypair(paths["key"], paths["pub"])
    cosign.generate_keypair(paths["other_key"], paths["other_pub"])
    return paths


def _verify(pub_path: Path, signature: bytes, data: bytes) -> bool:
    public = serialization.load_pem_public_key(pub_path.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# -- serialisation goldens ------------------------------------------------------------
def test_payload_matches_sigstore_golden_without_claims() -> None:
    assert cosign.simple_signing_payload("example.com/test/image", VALID_DIGEST).decode() == GOLDEN_NO_CLAIMS


def test_payload_matches_sigstore_golden_with_claims() -> None:
    atomic = cosign.simple_signing_payload("example.com/atomic/test/image", VALID_DIGEST,
                                           {"timestamp": 1458239713, "creator": "atomic"})
    assert atomic.decode() == GOLDEN_ATOMIC
    arbitrary = cosign.simple_signing_payload(
        "example.com/cosign/test/image", VALID_DIGEST,
        {"creator": "anyone", "some_struct": {"foo": "bar", "false": True, "nothing": None},
         "CamelCase WithSpace": 8.314})
    assert arbitrary.decode() == GOLDEN_ARBITRARY


def test_signature_image_matches_recorded_cosign_trace() -> None:
    payload_bytes = cosign.simple_signing_payload(TRACE_REFERENCE, TRACE_IMAGE)
    payload = oci.Blob(payload_bytes, cosign.SIMPLESIGNING,
                       annotations={cosign.SIGNATURE_ANNOTATION: TRACE_SIGNATURE})
    assert (payload.digest, payload.size) == TRACE_PAYLOAD
    config = cosign.signature_config(payload.digest, created=TRACE_CONFIG_CREATED)
    assert (config.digest, config.size) == TRACE_CONFIG
    manifest = cosign.signature_manifest(config, [payload])
    assert (manifest.digest, manifest.size) == TRACE_MANIFEST


def test_go_json_escapes_like_go() -> None:
    assert marshal({"a": "<&>\u2028é"}) == '{"a":"\\u003c\\u0026\\u003e\\u2028é"}'.encode()
    assert marshal(GoMap({"b": 5.0, "a": [1.5, None]})) == b'{"a":[1.5,null],"b":5}'


# -- legacy tag scheme ----------------------------------------------------------------
def test_legacy_signature_verifies_with_cosign_pub(keys: dict[str, Path]) -> None:
    image = oci.Blob(b'{"schemaVersion":2}', oci.OCI_MANIFEST)
    sig = cosign.legacy_signature(cosign.load_private_key(keys["key"]),
                                  "registry.regaudit.test/myapp/backend", image.digest)
    assert sig.tag == "sha256-" + image.digest.split(":")[1] + ".sig"
    manifest = json.loads(sig.manifest.data)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert layer["digest"] == "sha256:" + hashlib.sha256(sig.payload.data).hexdigest()
    assert json.loads(sig.config.data)["rootfs"]["diff_ids"] == [layer["digest"]]
    der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    assert _verify(keys["pub"], der, sig.payload.data)
    payload = json.loads(sig.payload.data)
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.digest
    assert payload["critical"]["identity"]["docker-reference"] == "registry.regaudit.test/myapp/backend"


def test_tampered_payload_fails(keys: dict[str, Path]) -> None:
    sig = cosign.legacy_signature(cosign.load_private_key(keys["key"]), "r.test/a", VALID_DIGEST)
    der = base64.b64decode(sig.signature_b64)
    tampered = sig.payload.data.replace(VALID_DIGEST[-8:].encode(), b"00000000")
    assert tampered != sig.payload.data
    assert _verify(keys["pub"], der, sig.payload.data)
    assert not _verify(keys["pub"], der, tampered)


def test_other_key_fails(keys: dict[str, Path]) -> None:
    sig = cosign.legacy_signature(cosign.load_private_key(keys["other_key"]), "r.test/a", VALID_DIGEST)
    der = base64.b64decode(sig.signature_b64)
    assert _verify(keys["other_pub"], der, sig.payload.data)
    assert not _verify(keys["pub"], der, sig.payload.data)


def test_replayed_signature_is_valid_but_names_another_digest(keys: dict[str, Path]) -> None:
    other = "sha256:" + "ab" * 32
    sig = cosign.legacy_signature(cosign.load_private_key(keys["key"]), "r.test/a", VALID_DIGEST,
                                  payload_digest=other)
    assert sig.tag == "sha256-" + VALID_DIGEST.split(":")[1] + ".sig"
    assert _verify(keys["pub"], base64.b64decode(sig.signature_b64), sig.payload.data)
    assert json.loads(sig.payload.data)["critical"]["image"]["docker-manifest-digest"] == other


# -- sigstore bundle in the referrers tag schema ----------------------------------------
def test_bundle_dsse_verifies_and_binds_the_subject(keys: dict[str, Path]) -> None:
    subject = oci.Blob(b'{"schemaVersion":2,"mediaType":"x"}', oci.OCI_INDEX)
    b = cosign.bundle_signature(cosign.load_private_key(keys["key"]), subject, "2026-11-28T00:00:00Z")
    bundle = json.loads(b.bundle.data)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    der_pub = serialization.load_pem_public_key(keys["pub"].read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == base64.b64encode(
        hashlib.sha256(der_pub).digest()).decode()
    env = bundle["dsseEnvelope"]
    body = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(ptype)).encode() + b" " + ptype + b" " + str(len(body)).encode() + b" " + body
    sig = base64.b64decode(env["signatures"][0]["sig"])
    assert _verify(keys["pub"], sig, pae)
    assert not _verify(keys["other_pub"], sig, pae)
    assert not _verify(keys["pub"], sig, pae.replace(b"sha256", b"sha512", 1))
    statement = json.loads(body)
    assert statement["predicateType"] == "https://sigstore.dev/cosign/sign/v1"
    assert statement["subject"][0]["digest"] == {"sha256": subject.digest.split(":")[1]}
    referrer = json.loads(b.manifest.data)
    assert referrer["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert referrer["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert referrer["subject"] == {"mediaType": subject.media_type, "size": subject.size,
                                   "digest": subject.digest}
    index = json.loads(b.fallback_index.data)
    assert b.fallback_tag == "sha256-" + subject.digest.split(":")[1]
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["manifests"] == [{"mediaType": oci.OCI_MANIFEST, "size": b.manifest.size,
                                   "digest": b.manifest.digest,
                                   "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"}]
