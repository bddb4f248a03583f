"""Signing evidence on a target host that may have nothing but python3.

The signature file is the report-signing format of auditor.signing (`regaudit-signature/1`:
algorithm, key id = sha256 of the public key's DER, base64 signature over the file's exact bytes),
so the control host verifies it with the same code and the same trusted public key as a signed
report. The key is an unencrypted Ed25519 PKCS#8 PEM (`openssl genpkey -algorithm ed25519`), signed
in pure Python (RFC 8032) so no compiled package is needed on the host. Verification never happens
here: it is the control host's job.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from auditor import der
from auditor.errors import UsageError

SIGNATURE_FORMAT = "regaudit-signature/1"
ED25519_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# RFC 8032 section 5.1 (edwards25519), extended coordinates.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
_GY = 4 * pow(5, P - 2, P) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y: int, sign: int) -> int:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * _SQRT_M1 % P
    if (x & 1) != sign:
        x = P - x
    return x


_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)
Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: Point) -> bytes:
    x, y, z, _ = point
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _expand(seed: bytes) -> tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def ed25519_public(seed: bytes) -> bytes:
    return _encode(_mul(_expand(seed)[0], G))


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """RFC 8032 Ed25519 (pure) signature of `message` with the 32-byte private `seed`."""
    a, prefix = _expand(seed)
    public = _encode(_mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = _encode(_mul(r, G))
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    return big_r + int.to_bytes((r + k * a) % L, 32, "little")


def _pem(der_bytes: bytes, label: str) -> str:
    body = base64.b64encode(der_bytes).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def envelope(data: bytes, algorithm: str, signature: bytes, spki: bytes) -> dict[str, str]:
    return {
        "format": SIGNATURE_FORMAT,
        "algorithm": algorithm,
        "key_id": hashlib.sha256(spki).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(signature).decode(),
        "public_key": _pem(spki, "PUBLIC KEY"),
    }


def load_signer(path: str) -> Callable[[bytes], bytes]:
    """A function from the evidence bytes to the signature file's bytes; UsageError on a bad key."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
    blocks = der.pem_blocks(text, "PRIVATE KEY")
    if blocks and blocks[0].startswith(ED25519_PKCS8_PREFIX) and len(blocks[0]) == len(ED25519_PKCS8_PREFIX) + 32:
        seed = blocks[0][len(ED25519_PKCS8_PREFIX):]
        spki = ED25519_SPKI_PREFIX + ed25519_public(seed)

        def sign_ed25519(data: bytes) -> bytes:
            signed = envelope(data, "ed25519", ed25519_sign(seed, data), spki)
            return (json.dumps(signed, indent=2) + "\n").encode()

        return sign_ed25519
    raise UsageError(f"signing key {path}: evidence is signed on the host with an unencrypted Ed25519 PKCS#8 key "
                     "(openssl genpkey -algorithm ed25519)")
