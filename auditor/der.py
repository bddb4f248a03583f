"""Pure-Python reading of the few DER structures inside gathering needs when `cryptography` is absent.

The gather-only zipapp (auditor.fleet) runs on hosts that have python3 and nothing else, so the
probes that parse certificates and public keys fall back to this module. It produces the same
facts as `cryptography` for the same input (tests/unit/test_fleet_der.py compares them):
certificate subjects as RFC 4514 strings, validity times in UTC, and the DER of a PEM public key.
It reads, never verifies: signature checking stays on the control host.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterator

PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
# cryptography's names for attribute types in RFC 4514 strings (others print as a dotted OID).
OID_NAMES = {
    "2.5.4.3": "CN", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.6": "C", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
STRING_CODECS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be",
                 0x1C: "utf-32-be", 0x1A: "ascii", 0x12: "ascii"}


class DerError(ValueError):
    """Input that is not the DER structure expected."""


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """(tag, contents, offset after) of the TLV at `offset`."""
    if offset + 2 > len(data):
        raise DerError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise DerError("bad DER length")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise DerError("truncated DER")
    return tag, data[offset:end], end


def children(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The TLVs inside a constructed value's contents."""
    offset = 0
    while offset < len(data):
        tag, contents, offset = read_tlv(data, offset)
        yield tag, contents


def oid(contents: bytes) -> str:
    if not contents:
        raise DerError("empty OID")
    parts = [min(contents[0] // 40, 2), contents[0] - 40 * min(contents[0] // 40, 2)]
    value = 0
    for byte in contents[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def pem_blocks(data: bytes, label: str) -> list[bytes]:
    """The DER of every PEM block of `label` in `data`."""
    out = []
    for match in PEM.finditer(data):
        if match.group(1).decode() != label:
            continue
        try:
            out.append(base64.b64decode(b"".join(match.group(2).split()), validate=True))
        except binascii.Error:
            raise DerError(f"{label} block is not base64") from None
    return out


def _time(tag: int, contents: bytes) -> dt.datetime:
    text = contents.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:
        raise DerError("validity is not a time")
    if not text.endswith("Z"):
        raise DerError("time is not in UTC")
    return dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def _escape(value: str) -> str:
    """RFC 4514 escaping as cryptography's Name.rfc4514_string does it."""
    if not value:
        return ""
    for char in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] in ("#", " "):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def name_rfc4514(contents: bytes) -> str:
    """An X.501 Name (RDNSequence contents) as cryptography's rfc4514_string()."""
    rdns = []
    for _, rdn in children(contents):
        attributes = []
        for _, pair in children(rdn):
            (_, type_oid), (value_tag, value) = list(children(pair))[:2]
            dotted = oid(type_oid)
            codec = STRING_CODECS.get(value_tag)
            text = _escape(value.decode(codec)) if codec else "#" + bytes([value_tag]).hex() + value.hex()
            attributes.append(f"{OID_NAMES.get(dotted, dotted)}={text}")
        rdns.append("+".join(attributes))
    return ",".join(reversed(rdns))


def certificate_summary(der: bytes) -> dict[str, str]:
    """{subject, not_before, not_after} of one DER certificate."""
    _, cert, _ = read_tlv(der)
    tbs_tag, tbs = next(children(cert))
    if tbs_tag != 0x30:
        raise DerError("not a certificate")
    fields = list(children(tbs))
    if fields and fields[0][0] == 0xA0:  # explicit version
        fields = fields[1:]
    if len(fields) < 5:
        raise DerError("certificate is truncated")
    validity = list(children(fields[3][1]))
    return {
        "subject": name_rfc4514(fields[4][1]),
        "not_before": _time(*validity[0]).isoformat(),
        "not_after": _time(*validity[1]).isoformat(),
    }


def certificates(pem: bytes) -> list[dict[str, str]]:
    """Every certificate of a PEM bundle; DerError when there is none or one is malformed."""
    blocks = pem_blocks(pem, "CERTIFICATE")
    if not blocks:
        raise DerError("no certificate found in the PEM data")
    try:
        return [certificate_summary(block) for block in blocks]
    except (IndexError, StopIteration, UnicodeDecodeError, ValueError) as exc:
        raise DerError(f"malformed certificate: {exc}") from None


def public_key_der(block: str) -> bytes:
    """The SubjectPublicKeyInfo DER of one PEM PUBLIC KEY block (structure checked)."""
    found = pem_blocks(block.encode(), "PUBLIC KEY")
    if not found:
        raise DerError("no PUBLIC KEY block")
    der = found[0]
    try:
        tag, spki, end = read_tlv(der)
        parts = list(children(spki))
    except DerError as exc:
        raise DerError(f"not a public key: {exc}") from None
    if tag != 0x30 or end != len(der) or len(parts) != 2 or parts[0][0] != 0x30 or parts[1][0] != 0x03:
        raise DerError("not a SubjectPublicKeyInfo")
    return der
