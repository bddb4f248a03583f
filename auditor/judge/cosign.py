"""Cosign signature verification (pure: bytes in, verdict out; no I/O).

Contract:
- `TrustedKeys.from_pems([(source, pem), ...])` loads PKIX public keys (ECDSA, RSA, Ed25519);
  unloadable PEMs are kept in `errors` (never raised).
- `verify_legacy(layer, digest, repo, hosts, keys)` judges one simple-signing layer of a
  `sha256-<hex>.sig` manifest: signature over the exact payload bytes with a trusted key, the
  payload's docker-manifest-digest (keys matched case-insensitively) equal to `digest`, and its
  docker-reference naming `repo` on one of `hosts`.
- `verify_bundle_keyed(bundle, digest, keys)` judges a key-signed Sigstore bundle (DSSE over
  PAE, publicKey.hint) whose in-toto statement must name `digest`.
Each returns a `Verdict`: status valid | invalid | untrusted | unverifiable, and the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from auditor.judge.parse import load_json

VALID = "valid"
INVALID = "invalid"
UNTRUSTED = "untrusted"
UNVERIFIABLE = "unverifiable"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    key: str = ""
    scheme: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"status": self.status, "reason": self.reason, "scheme": self.scheme}
        if self.key:
            out["key"] = self.key
        return out


@dataclass(frozen=True)
class TrustedKey:
    source: str
    key: PublicKey
    hint: str  # base64(sha256(PKIX DER)), the bundle's publicKey.hint

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when `signature` over `message` verifies with this key (SHA-256 for EC/RSA)."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            elif isinstance(self.key, rsa.RSAPublicKey):
                try:
                    self.key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    self.key.verify(signature, message,
                                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                salt_length=padding.PSS.AUTO),
                                    hashes.SHA256())
            else:
                self.key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass
class TrustedKeys:
    keys: list[TrustedKey] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_pems(cls, pems: Iterable[tuple[str, str]]) -> TrustedKeys:
        out = cls()
        for source, pem in pems:
            try:
                key = serialization.load_pem_public_key(pem.encode())
            except (ValueError, TypeError) as exc:
                out.errors.append(f"{source}: not a PEM public key ({exc})")
                continue
            if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
                out.errors.append(f"{source}: unsupported key type {type(key).__name__}")
                continue
            der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            hint = base64.b64encode(hashlib.sha256(der).digest()).decode()
            out.keys.append(TrustedKey(source, key, hint))
        return out

    def __bool__(self) -> bool:
        return bool(self.keys)


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ci_get(obj: Any, key: str) -> Any:
    """JSON object lookup with Go's case-insensitive key matching (exact match preferred)."""
    if not isinstance(obj, Mapping):
        return None
    if key in obj:
        return obj[key]
    lower = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lower:
            return v
    return None


def split_reference(reference: str) -> tuple[str, str]:
    """`host[:port]/path[:tag|@digest]` -> (host[:port], path); a reference without host -> ('', path)."""
    ref = reference.split("@", 1)[0]
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "", ref
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        path = path[: len(path) - len(last[-1])] + last[-1].split(":", 1)[0]
    return host.lower(), path


def reference_matches(reference: str, repo: str, hosts: Iterable[str]) -> tuple[bool, str]:
    """Does a payload's docker-reference name `repo` on one of `hosts` (host or host:port)?"""
    host, path = split_reference(reference)
    if path != repo:
        return False, f"docker-reference {reference!r} names repository {path!r}, not {repo!r}"
    allowed = {h.lower() for h in hosts if h}
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if allowed and host not in allowed and bare not in allowed:
        names = " or ".join(sorted(allowed))
        return False, f"docker-reference {reference!r} names host {host or '(none)'}, not {names}"
    return True, ""


def payload_facts(payload: bytes) -> tuple[str, str, str]:
    """(docker-manifest-digest, docker-reference, error) of a simple-signing payload."""
    try:
        doc = load_json(payload, "signature payload")
    except (ValueError, UnicodeDecodeError):
        return "", "", "payload is not JSON"
    critical = _ci_get(doc, "critical")
    digest = _ci_get(_ci_get(critical, "image"), "docker-manifest-digest")
    reference = _ci_get(_ci_get(critical, "identity"), "docker-reference")
    if not isinstance(digest, str) or not digest:
        return "", "", "payload has no critical.image.docker-manifest-digest"
    return digest, reference if isinstance(reference, str) else "", ""


def verify_legacy(layer: Mapping[str, Any], digest: str, repo: str, hosts: Iterable[str],
                  keys: TrustedKeys) -> Verdict:
    """Judge one simple-signing layer (evidence shape: payload_b64, payload_digest, signature, certificate)."""
    scheme = "legacy"
    if layer.get("error"):
        return Verdict(UNVERIFIABLE, f"signature layer unreadable: {layer['error']}", scheme=scheme)
    payload = _b64(layer.get("payload_b64"))
    if payload is None:
        return Verdict(UNVERIFIABLE, "payload blob missing from the evidence", scheme=scheme)
    want = layer.get("payload_digest")
    if want and "sha256:" + hashlib.sha256(payload).hexdigest() != want:
        return Verdict(INVALID, f"payload bytes do not match their layer digest {want}", scheme=scheme)
    sig = _b64(layer.get("signature"))
    if sig is None:
        return Verdict(INVALID, "layer has no base64 dev.cosignproject.cosign/signature annotation", scheme=scheme)
    if not keys:
        if layer.get("certificate"):
            return Verdict(UNVERIFIABLE, "keyless legacy signature (certificate annotation): give a trusted "
                           "key or sign with the bundle format to verify keyless", scheme=scheme)
        return Verdict(UNVERIFIABLE, "no trusted public key given (--cosign-key)", scheme=scheme)
    signer = next((k for k in keys.keys if k.verify(sig, payload)), None)
    if signer is None:
        how = ("certificate-signed (keyless) signature: no trusted key verifies it" if layer.get("certificate")
               else f"signature does not verify with any of the {len(keys.keys)} trusted key(s): "
               "signed by an untrusted key, or the payload was altered after signing")
        return Verdict(UNTRUSTED, how, scheme=scheme)
    named, reference, error = payload_facts(payload)
    if error:
        return Verdict(INVALID, error, signer.source, scheme)
    if named.lower() != digest.lower():
        return Verdict(INVALID, f"payload names digest {named}, not the tag's digest {digest} "
                       "(a signature for another image)", signer.source, scheme)
    ok, why = reference_matches(reference, repo, hosts)
    if not ok:
        return Verdict(INVALID, why, signer.source, scheme)
    return Verdict(VALID, f"verified with {signer.source}; payload names {digest} and {reference}",
                   signer.source, scheme)


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def statement_digests(statement: bytes) -> tuple[list[str], str, str]:
    """(subject digests as sha256:<hex>, predicateType, error) of an in-toto statement."""
    try:
        doc = load_json(statement, "DSSE payload")
    except (ValueError, UnicodeDecodeError):
        return [], "", "DSSE payload is not JSON"
    if not isinstance(doc, dict):
        return [], "", "DSSE payload is not an in-toto statement"
    digests = []
    for subject in doc.get("subject") or []:
        if isinstance(subject, dict) and isinstance(subject.get("digest"), dict):
            for algo, value in subject["digest"].items():
                digests.append(f"{algo}:{value}")
    return digests, str(doc.get("predicateType", "")), ""


def parse_bundle(text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        doc = load_json(text, "bundle")
    except (ValueError, TypeError):
        return None, "bundle is not JSON"
    return (doc, "") if isinstance(doc, dict) else (None, "bundle is not a JSON object")


def verify_bundle_keyed(bundle: Mapping[str, Any], digest: str, keys: TrustedKeys) -> Verdict:
    """Judge a key-signed bundle (verificationMaterial.publicKey) over its DSSE envelope."""
    scheme = "sigstore-bundle"
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        return Verdict(UNVERIFIABLE, "key-signed bundle without a DSSE envelope (message signatures "
                       "need the artifact)", scheme=scheme)
    body = _b64(envelope.get("payload"))
    payload_type = envelope.get("payloadType")
    sigs = [_b64(s.get("sig")) for s in envelope.get("signatures") or [] if isinstance(s, dict)]
    if body is None or not isinstance(payload_type, str) or not any(sigs):
        return Verdict(INVALID, "DSSE envelope lacks payload, payloadType or a signature", scheme=scheme)
    material = bundle.get("verificationMaterial") or {}
    hint = str((material.get("publicKey") or {}).get("hint") or "")
    if not keys:
        return Verdict(UNVERIFIABLE, "no trusted public key given (--cosign-key)", scheme=scheme)
    candidates = [k for k in keys.keys if k.hint == hint] if hint else list(keys.keys)
    if hint and not candidates:
        return Verdict(UNTRUSTED, f"signed by an untrusted key (publicKey.hint {hint} matches none of the "
                       f"{len(keys.keys)} trusted key(s))", scheme=scheme)
    message = pae(payload_type, body)
    signer = next((k for k in candidates for s in sigs if s is not None and k.verify(s, message)), None)
    if signer is None:
        if hint:
            return Verdict(INVALID, f"DSSE signature does not verify with the trusted key its hint names "
                           f"({candidates[0].source}): envelope altered after signing", scheme=scheme)
        return Verdict(UNTRUSTED, "DSSE signature verifies with none of the trusted keys", scheme=scheme)
    return check_statement(body, digest, signer.source, scheme)


def check_statement(body: bytes, digest: str, signer: str, scheme: str) -> Verdict:
    digests, predicate, error = statement_digests(body)
    if error:
        return Verdict(INVALID, error, signer, scheme)
    if digest.lower() not in (d.lower() for d in digests):
        return Verdict(INVALID, f"statement subject names {', '.join(digests) or 'no digest'}, not the tag's "
                       f"digest {digest}", signer, scheme)
    return Verdict(VALID, f"verified with {signer}; statement ({predicate}) names {digest}", signer, scheme)
