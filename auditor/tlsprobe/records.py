"""Wire formats: ClientHello builders (SSLv2, SSLv3 .. TLS 1.3) and ServerHello/alert/Certificate parsers.

Pure bytes in, bytes or dataclasses out; parsers raise `WireError` on anything malformed, never
IndexError or struct.error, so a hostile server's bytes become a reason string upstream.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION_CODES: dict[str, int] = {
    "SSLv3": 0x0300,
    "TLSv1.0": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}
VERSION_NAMES: dict[int, str] = {v: k for k, v in VERSION_CODES.items()}

CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA, CT_HEARTBEAT = 20, 21, 22, 23, 24
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_CERTIFICATE, HS_SERVER_HELLO_DONE = 1, 2, 11, 14
HS_CERTIFICATE_STATUS = 22
MAX_RECORD = 2**14 + 2048

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS = 0, 10, 11
EXT_SIGNATURE_ALGORITHMS, EXT_PADDING, EXT_EXTENDED_MASTER_SECRET = 13, 21, 23
EXT_SUPPORTED_VERSIONS, EXT_PSK_MODES, EXT_KEY_SHARE = 43, 45, 51
EXT_RENEGOTIATION_INFO = 0xFF01
EXT_STATUS_REQUEST = 5  # RFC 6066 8: OCSP stapling
STATUS_TYPE_OCSP = 1

GROUP_SECP256R1, GROUP_X25519 = 23, 29
# Every named group a server might insist on: x25519/x448, NIST and legacy curves, FFDHE.
SUPPORTED_GROUPS: tuple[int, ...] = (
    29, 23, 30, 24, 25, 256, 257, 258, 259, 260,
    *range(1, 23), 26, 27, 28,
)
SIGNATURE_ALGORITHMS: tuple[int, ...] = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
    0x0203, 0x0201, 0x0202, 0x0101, 0x0102, 0x0103,
)

ALERT_NAMES: dict[int, str] = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure",
    41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
    120: "no_application_protocol",
}

# SSLv2 CIPHER-SPECs (3 bytes) with their SSLv2 names.
SSLV2_CIPHERS: dict[int, str] = {
    0x010080: "SSL_CK_RC4_128_WITH_MD5",
    0x020080: "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
    0x030080: "SSL_CK_RC2_128_CBC_WITH_MD5",
    0x040080: "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
    0x050080: "SSL_CK_IDEA_128_CBC_WITH_MD5",
    0x060040: "SSL_CK_DES_64_CBC_WITH_MD5",
    0x0700C0: "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
    0x080080: "SSL_CK_RC4_64_WITH_MD5",
}


class WireError(ValueError):
    """Bytes that are not the protocol message they should be; the message says why."""


@dataclass(frozen=True)
class Record:
    content_type: int
    version: int
    fragment: bytes


@dataclass(frozen=True)
class ServerHello:
    """A parsed ServerHello; `version` is the negotiated one (supported_versions wins)."""

    legacy_version: int
    version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HRR_RANDOM


@dataclass(frozen=True)
class SSLv2ServerHello:
    version: int
    cipher_specs: tuple[int, ...]
    certificate: bytes


def _u8(data: bytes) -> bytes:
    return struct.pack("!B", len(data)) + data


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u24(data: bytes) -> bytes:
    return struct.pack("!I", len(data))[1:] + data


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack("!H", ext_type) + _u16(body)


def _u16_list(values: Iterable[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def is_dns_name(server_name: str) -> bool:
    """SNI carries host names only (RFC 6066 3): not IP literals."""
    try:
        ipaddress.ip_address(server_name.strip("[]"))
    except ValueError:
        return bool(server_name)
    return False


def key_shares() -> list[tuple[int, bytes]]:
    """Fresh x25519 and secp256r1 public keys for a TLS 1.3 key_share (private keys discarded)."""
    x = x25519.X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    p = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint)
    return [(GROUP_X25519, x), (GROUP_SECP256R1, p)]


def build_extensions(version: str, server_name: str | None,
                     shares: Sequence[tuple[int, bytes]] | None = None, *, status_request: bool = False) -> bytes:
    """The hello's extensions: SNI, groups, point formats, renegotiation_info, EMS, and for TLS 1.2+
    signature_algorithms; for TLS 1.3 also supported_versions, psk modes and key_share. With
    `status_request`, an OCSP status_request (RFC 6066 8: no responder ids, no extensions)."""
    exts = []
    if server_name and is_dns_name(server_name):
        name = server_name.encode("idna")
        exts.append(_ext(EXT_SERVER_NAME, _u16(b"\x00" + _u16(name))))
    if status_request:
        exts.append(_ext(EXT_STATUS_REQUEST, struct.pack("!B", STATUS_TYPE_OCSP) + _u16(b"") + _u16(b"")))
    exts.append(_ext(EXT_SUPPORTED_GROUPS, _u16(_u16_list(SUPPORTED_GROUPS))))
    exts.append(_ext(EXT_EC_POINT_FORMATS, _u8(b"\x00\x01\x02")))
    if version in ("TLSv1.2", "TLSv1.3"):
        exts.append(_ext(EXT_SIGNATURE_ALGORITHMS, _u16(_u16_list(SIGNATURE_ALGORITHMS))))
    exts.append(_ext(EXT_EXTENDED_MASTER_SECRET, b""))
    exts.append(_ext(EXT_RENEGOTIATION_INFO, b"\x00"))
    if version == "TLSv1.3":
        exts.append(_ext(EXT_SUPPORTED_VERSIONS, _u8(struct.pack("!H", 0x0304))))
        exts.append(_ext(EXT_PSK_MODES, _u8(b"\x01")))
        entries = b"".join(struct.pack("!H", g) + _u16(k) for g, k in (shares or key_shares()))
        exts.append(_ext(EXT_KEY_SHARE, _u16(entries)))
    return b"".join(exts)


def build_client_hello(version: str, suites: Sequence[int], server_name: str | None = None, *,
                       random: bytes | None = None,
                       shares: Sequence[tuple[int, bytes]] | None = None,
                       status_request: bool = False) -> bytes:
    """A complete handshake record carrying a ClientHello for SSLv3 .. TLSv1.3.

    Versions up to 1.2 are offered as legacy client_version (the server may not go higher);
    TLS 1.3 is offered only through supported_versions, with client_version 1.2.
    """
    if version not in VERSION_CODES:
        raise ValueError(f"cannot build a ClientHello for {version}")
    if not suites:
        raise ValueError("a ClientHello needs at least one cipher suite")
    client_version = min(VERSION_CODES[version], 0x0303)
    rnd = random if random is not None else os.urandom(32)
    session_id = os.urandom(32) if version == "TLSv1.3" else b""
    head = (struct.pack("!H", client_version) + rnd + _u8(session_id)
            + _u16(_u16_list(suites)) + _u8(b"\x00"))
    extensions = build_extensions(version, server_name, shares, status_request=status_request)
    # RFC 7685: some servers hang on hellos of 256-511 bytes; pad those to 512
    size = 4 + len(head) + 2 + len(extensions)
    if 0xFF < size < 0x200:
        extensions += _ext(EXT_PADDING, b"\x00" * max(0, 0x200 - size - 4))
    handshake = struct.pack("!B", HS_CLIENT_HELLO) + _u24(head + _u16(extensions))
    record_version = 0x0300 if version == "SSLv3" else 0x0301
    return struct.pack("!BH", CT_HANDSHAKE, record_version) + _u16(handshake)


def build_sslv2_client_hello(cipher_specs: Sequence[int] | None = None,
                             challenge: bytes | None = None) -> bytes:
    """An SSLv2 CLIENT-HELLO (version 0x0002) offering the given 3-byte cipher specs."""
    specs = list(cipher_specs) if cipher_specs is not None else list(SSLV2_CIPHERS)
    chal = challenge if challenge is not None else os.urandom(16)
    spec_bytes = b"".join(struct.pack("!I", s)[1:] for s in specs)
    body = (struct.pack("!BHHHH", 1, 0x0002, len(spec_bytes), 0, len(chal)) + spec_bytes + chal)
    return struct.pack("!H", 0x8000 | len(body)) + body


def parse_records(buffer: bytes) -> tuple[list[Record], bytes]:
    """Split complete TLS records off `buffer`; returns (records, unconsumed tail).

    Raises WireError as soon as a header is not a TLS record (unknown content type, major
    version not 3, or a length beyond the protocol's maximum).
    """
    records: list[Record] = []
    pos = 0
    while len(buffer) - pos >= 5:
        ctype, version, length = struct.unpack_from("!BHH", buffer, pos)
        if ctype not in (20, 21, 22, 23, 24) or version >> 8 != 3 or length > MAX_RECORD:
            raise WireError(f"not a TLS record: header {buffer[pos:pos + 5].hex()}")
        if len(buffer) - pos - 5 < length:
            break
        records.append(Record(ctype, version, buffer[pos + 5:pos + 5 + length]))
        pos += 5 + length
    if pos == 0 and len(buffer) >= 1 and buffer[0] not in (20, 21, 22, 23, 24):
        raise WireError(f"not a TLS record: first byte 0x{buffer[0]:02x}")
    return records, buffer[pos:]


def parse_alert(fragment: bytes) -> tuple[int, int, str]:
    """(level, description, name) of an alert record's first alert."""
    if len(fragment) < 2:
        raise WireError("short alert")
    level, desc = fragment[0], fragment[1]
    return level, desc, ALERT_NAMES.get(desc, f"alert_{desc}")


class HandshakeBuffer:
    """Reassembles handshake messages that span or share records."""

    def __init__(self) -> None:
        self._data = b""

    def feed(self, fragment: bytes) -> list[tuple[int, bytes]]:
        """Add a handshake record fragment; return the (type, body) messages now complete."""
        self._data += fragment
        messages = []
        while len(self._data) >= 4:
            msg_type = self._data[0]
            length = int.from_bytes(self._data[1:4], "big")
            if len(self._data) < 4 + length:
                break
            messages.append((msg_type, self._data[4:4 + length]))
            self._data = self._data[4 + length:]
        return messages


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WireError(f"truncated {self.what}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def remaining(self) -> int:
        return len(self.data) - self.pos


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello (or HelloRetryRequest) body; the version honours supported_versions."""
    r = _Reader(body, "ServerHello")
    legacy_version = r.u16()
    random = r.take(32)
    session_id = r.take(r.u8())
    suite = r.u16()
    compression = r.u8()
    extensions: dict[int, bytes] = {}
    if r.remaining():
        ext_data = _Reader(r.take(r.u16()), "ServerHello extensions")
        while ext_data.remaining():
            ext_type = ext_data.u16()
            extensions[ext_type] = ext_data.take(ext_data.u16())
    version = legacy_version
    selected = extensions.get(EXT_SUPPORTED_VERSIONS)
    if selected is not None:
        if len(selected) != 2:
            raise WireError("malformed supported_versions in ServerHello")
        version = int.from_bytes(selected, "big")
    return ServerHello(legacy_version, version, random, session_id, suite, compression, extensions)


def parse_certificate_list(body: bytes) -> list[bytes]:
    """DER certificates of a TLS <= 1.2 Certificate message, leaf first."""
    r = _Reader(body, "Certificate")
    total = r.u24()
    if total != r.remaining():
        raise WireError("Certificate list length mismatch")
    certs = []
    while r.remaining():
        certs.append(r.take(r.u24()))
    return certs


def parse_certificate_status(body: bytes) -> bytes:
    """The DER OCSPResponse of a TLS <= 1.2 CertificateStatus message (RFC 6066 8)."""
    r = _Reader(body, "CertificateStatus")
    status_type = r.u8()
    if status_type != STATUS_TYPE_OCSP:
        raise WireError(f"CertificateStatus of unknown type {status_type}")
    response = r.take(r.u24())
    if r.remaining():
        raise WireError("CertificateStatus length mismatch")
    return response


def sslv2_record_length(buffer: bytes) -> int | None:
    """Total length of the SSLv2 record at the start of `buffer`, or None if not yet known."""
    if len(buffer) < 2:
        return None
    if buffer[0] & 0x80:
        return 2 + (((buffer[0] & 0x7F) << 8) | buffer[1])
    if len(buffer) < 3:
        return None
    return 3 + (((buffer[0] & 0x3F) << 8) | buffer[1])


def parse_sslv2_server_hello(record: bytes) -> SSLv2ServerHello:
    """Parse an SSLv2 SERVER-HELLO record (2- or 3-byte header included)."""
    header = 2 if record and record[0] & 0x80 else 3
    r = _Reader(record[header:], "SSLv2 SERVER-HELLO")
    if r.u8() != 4:
        raise WireError("not an SSLv2 SERVER-HELLO")
    r.u8()  # session id hit
    r.u8()  # certificate type
    version = r.u16()
    cert_len, specs_len, conn_id_len = r.u16(), r.u16(), r.u16()
    certificate = r.take(cert_len)
    spec_bytes = r.take(specs_len)
    r.take(conn_id_len)
    if specs_len % 3:
        raise WireError("SSLv2 cipher specs not a multiple of 3")
    specs = tuple(int.from_bytes(spec_bytes[i:i + 3], "big") for i in range(0, specs_len, 3))
    return SSLv2ServerHello(version, specs, certificate)
