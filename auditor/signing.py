"""Detached signatures over reports, so a reviewer can trust a report was not edited.

Keys: PEM ECDSA P-256 or Ed25519 private keys (PKCS#8 or traditional; encrypted ones take their
password from REGAUDIT_SIGN_KEY_PASSWORD), and cosign's own key format ("ENCRYPTED SIGSTORE
PRIVATE KEY" / "ENCRYPTED COSIGN PRIVATE KEY": scrypt + nacl secretbox around PKCS#8, password
from COSIGN_PASSWORD, as `cosign generate-key-pair` writes it). The signature file is JSON:
algorithm, key id (sha256 of the public key's DER) and the base64 signature over the report's
exact bytes (ECDSA with SHA-256, DER encoded; Ed25519 pure).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from auditor import bounded
from auditor.errors import UsageError

SIGNATURE_FORMAT = "regaudit-signature/1"
COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def _pem_body(text: str, label: str) -> bytes | None:
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    if begin not in text or end not in text:
        return None
    inner = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode("".join(inner.split()), validate=True)
    except binascii.Error:
        raise UsageError(f"{label} block is not base64") from None


def decrypt_cosign_key(envelope: bytes, password: bytes) -> bytes:
    """PKCS#8 DER from cosign's encrypted key envelope (securesystemslib `encrypted` format)."""
    try:
        data = bounded.load_json(envelope, "cosign key")
        kdf, cipher = data["kdf"], data["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise UsageError(f"unsupported cosign key encryption {kdf['name']}/{cipher['name']}")
        params = kdf["params"]
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(data["ciphertext"])
        key = Scrypt(salt=salt, length=32, n=int(params["N"]), r=int(params["r"]), p=int(params["p"])).derive(password)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"not a cosign private key: {exc}") from None
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError:
        raise UsageError("cannot decrypt the cosign key: wrong COSIGN_PASSWORD?") from None


def load_private_key(path: str) -> PrivateKey:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read signing key {path}: {exc}") from None
    for label in COSIGN_PEM_TYPES:
        envelope = _pem_body(text, label)
        if envelope is not None:
            der = decrypt_cosign_key(envelope, os.environ.get("COSIGN_PASSWORD", "").encode())
            key = serialization.load_der_private_key(der, password=None)
            break
    else:
        password = os.environ.get("REGAUDIT_SIGN_KEY_PASSWORD")
        try:
            key = serialization.load_pem_private_key(text.encode(), password=password.encode() if password else None)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"signing key {path}: {exc}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise UsageError(f"signing key {path}: only ECDSA P-256 and Ed25519 keys are supported")


def load_public_key(path: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read public key {path}: {exc}") from None
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise UsageError(f"public key {path}: only ECDSA and Ed25519 keys are supported")


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(data: bytes, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm, signature = "ed25519", key.sign(data)
    else:
        algorithm, signature = "ecdsa-p256-sha256", key.sign(data, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()
    return {
        "format": SIGNATURE_FORMAT,
        "algorithm": algorithm,
        "key_id": key_id(public),
        "sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(signature).decode(),
        "public_key": public.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    }


def verify(data: bytes, envelope: dict[str, Any], public: PublicKey) -> tuple[bool, str]:
    """(valid, reason). Verifies with the trusted key given, never with the key in the envelope."""
    if envelope.get("format") != SIGNATURE_FORMAT:
        return False, "not a regaudit signature file"
    if envelope.get("key_id") != key_id(public):
        return False, "signed by another key than the one trusted"
    try:
        signature = base64.b64decode(envelope["signature"], validate=True)
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError; so are non-ASCII strings
        return False, "signature field missing or not base64"
    except InvalidSignature:
        return False, "signature does not match the report (edited after signing?)"
    return True, f"valid {envelope.get('algorithm')} signature by key {envelope['key_id'][:16]}"
