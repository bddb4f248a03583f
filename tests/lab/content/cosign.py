"""Cosign-format signatures, made exactly as `cosign sign --key` writes them.

Legacy tag scheme (cosign <= 2.x default; cosign pkg/oci/static/signature.go,
pkg/oci/empty/empty.go, pkg/oci/mutate/signatures.go, pkg/oci/remote/write.go WriteSignatures):
the payload is sigstore's SimpleContainerImage (sigstore/sigstore pkg/signature/payload/payload.go)
serialised by Go's json.Marshal; its sha256 is the one layer of an OCI manifest with config
`application/vnd.oci.image.config.v1+json` (a go-containerregistry ConfigFile whose diff_ids
name the payload), layer media type `application/vnd.dev.cosign.simplesigning.v1+json` and the
annotation `dev.cosignproject.cosign/signature` = base64(ASN.1 DER ECDSA P-256 over SHA-256 of the
payload bytes); the manifest is tagged `sha256-<hex>.sig`.

Sigstore bundle (cosign 3 `--new-bundle-format`; cmd/cosign/cli/sign/sign.go signDigestBundle,
pkg/oci/remote/write.go WriteAttestationNewBundleFormat / WriteReferrer): an in-toto v1
statement (subject digest only, predicateType https://sigstore.dev/cosign/sign/v1, empty
predicate) in a DSSE envelope signed over PAE, inside a bundle v0.3 carrying publicKey.hint =
base64(sha256(PKIX DER)); pushed as a referrer manifest (empty config, artifactType the bundle
media type, subject = the image) and, on registries without the referrers API, listed in an OCI
index tagged `sha256-<hex>` (go-containerregistry commitSubjectReferrers).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .gojson import GoMap, marshal
from .oci import OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, ZERO_TIME, Blob

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
EMPTY_JSON = b"{}"


# -- keys -------------------------------------------------------------------------------
def generate_keypair(private_path: Path, public_path: Path) -> None:
    """Write a P-256 key pair: PKCS#8 PEM private key (0600) and PKIX `PUBLIC KEY` PEM.

    cosign's own `cosign.key` is scrypt + nacl/secretbox encrypted; no library here provides
    secretbox, so the lab keeps the private key unencrypted (mode 0600) beside cosign.pub.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PEM (PKCS#8 or SEC1) ECDSA private key."""
    data = path.read_bytes()
    if b"ENCRYPTED SIGSTORE PRIVATE KEY" in data or b"ENCRYPTED COSIGN PRIVATE KEY" in data:
        raise ValueError(f"{path}: cosign-encrypted keys (nacl/secretbox) are not supported; "
                         "give an unencrypted PKCS#8 PEM")
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an ECDSA private key")
    return key


def public_key_hint(key: ec.EllipticCurvePrivateKey) -> str:
    """base64(SHA-256(PKIX DER of the public key)): the bundle's publicKey.hint."""
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


# -- legacy tag scheme --------------------------------------------------------------------
def simple_signing_payload(docker_reference: str, digest: str,
                           optional: dict[str, Any] | None = None) -> bytes:
    """sigstore payload.Cosign.MarshalJSON: the exact bytes cosign signs."""
    body = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": _go_map(optional) if optional is not None else None,
    }
    return marshal(body)


def sign_bytes(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ASN.1 DER ECDSA signature over SHA-256(data)."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def signature_tag(digest: str, suffix: str = "sig") -> str:
    """`sha256:<hex>` -> `sha256-<hex>.sig` (cosign remote.normalize)."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}.{suffix}" if suffix else f"{algo}-{hexpart}"


def signature_config(payload_digest: str, created: str = ZERO_TIME) -> Blob:
    """The go-containerregistry ConfigFile of a signature image (empty.Image + one layer).

    cosign 2.x leaves `created` at Go's zero time unless --record-creation-timestamp is given.
    """
    body = {
        "architecture": "",
        "created": created,
        "history": [{"created": ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
        "config": {},
    }
    return Blob(marshal(body), OCI_CONFIG)


def signature_manifest(config: Blob, payloads: list[Blob]) -> Blob:
    """The OCI manifest of the `.sig` image: one simple-signing layer per signature."""
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [p.descriptor() for p in payloads],
    }
    return Blob(marshal(body), OCI_MANIFEST)


def _go_map(value: Any) -> Any:
    """map[string]interface{} all the way down: nested dicts marshal with sorted keys."""
    if isinstance(value, dict):
        return GoMap({k: _go_map(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_go_map(v) for v in value]
    return value


@dataclass
class LegacySignature:
    """What gets pushed for one `cosign sign`: payload blob, config blob, manifest, tag."""

    payload: Blob
    config: Blob
    manifest: Blob
    tag: str
    signature_b64: str
    signed_digest: str


def legacy_signature(key: ec.EllipticCurvePrivateKey, docker_reference: str, subject_digest: str,
                     *, payload_digest: str | None = None) -> LegacySignature:
    """Sign `payload_digest` (default: the subject) and store it under the subject's .sig tag.

    A `payload_digest` different from `subject_digest` seeds the 'signature names another
    digest' defect: the signature is cryptographically valid but for another image.
    """
    named = payload_digest or subject_digest
    payload_bytes = simple_signing_payload(docker_reference, named)
    b64sig = base64.b64encode(sign_bytes(key, payload_bytes)).decode()
    payload = Blob(payload_bytes, SIMPLESIGNING, annotations={SIGNATURE_ANNOTATION: b64sig})
    config = signature_config(payload.digest)
    manifest = signature_manifest(config, [payload])
    return LegacySignature(payload=payload, config=config, manifest=manifest,
                           tag=signature_tag(subject_digest), signature_b64=b64sig,
                           signed_digest=named)


# -- sigstore bundle (cosign 3) -----------------------------------------------------------
def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def sign_statement(digest: str) -> bytes:
    """The in-toto statement cosign 3 signs for an image (protojson, compact)."""
    algo, _, hexpart = digest.partition(":")
    statement = {
        "_type": INTOTO_STATEMENT_V1,
        "subject": [{"digest": {algo: hexpart}, "annotations": {}}],
        "predicateType": SIGN_PREDICATE_TYPE,
        "predicate": {},
    }
    return marshal(statement)


@dataclass
class BundleSignature:
    """A bundle referrer: bundle layer, empty config, referrer manifest, fallback index."""

    bundle: Blob
    config: Blob
    manifest: Blob
    fallback_index: Blob
    fallback_tag: str
    signed_digest: str


def bundle_signature(key: ec.EllipticCurvePrivateKey, subject: Blob, created: str, *,
                     index_annotations: bool = False) -> BundleSignature:
    """A key-signed bundle for `subject` and the referrers-tag-schema index listing it.

    `index_annotations` copies the referrer's annotations into the index entry, as
    go-containerregistry does since google/go-containerregistry#2441; without it the entry
    carries mediaType, size, digest and artifactType only (the form FORMATS.md describes).
    """
    statement = sign_statement(subject.digest)
    sig = sign_bytes(key, pae(INTOTO_PAYLOAD_TYPE, statement))
    bundle_body = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": public_key_hint(key)}},
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode()}],
        },
    }
    bundle = Blob(marshal(bundle_body), BUNDLE_MEDIA_TYPE)
    config = Blob(EMPTY_JSON, OCI_EMPTY)
    annotations = GoMap({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": SIGN_PREDICATE_TYPE,
        "org.opencontainers.image.created": created,
    })
    manifest_body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(artifactType=BUNDLE_MEDIA_TYPE),
        "layers": [bundle.descriptor()],
        "annotations": annotations,
        "subject": {"mediaType": subject.media_type, "size": subject.size, "digest": subject.digest},
        "artifactType": BUNDLE_MEDIA_TYPE,
    }
    manifest = Blob(marshal(manifest_body), OCI_MANIFEST)
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "size": manifest.size, "digest": manifest.digest}
    if index_annotations:
        entry["annotations"] = annotations
    entry["artifactType"] = BUNDLE_MEDIA_TYPE
    index = Blob(marshal({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}), OCI_INDEX)
    return BundleSignature(bundle=bundle, config=config, manifest=manifest, fallback_index=index,
                           fallback_tag=signature_tag(subject.digest, ""), signed_digest=subject.digest)
