"""Cipher suites: typed rows of the IANA registry table with the properties checks judge.

Contract: `SUITES` maps every 16-bit code in `suite_data.SUITE_ROWS` to a frozen `CipherSuite`;
properties (key exchange, authentication, encryption, MAC, flags) are parsed from the IANA name
by `parse_name`, so the table holds names only and the rules are tested in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.judge.suite_data import SUITE_ROWS

# Protocol versions by name, oldest first (as the probe records them and the checks judge them).
ALL_VERSIONS: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# Key-exchange part of an IANA name (between TLS_ and _WITH_) -> (kx, auth).
_KX_AUTH: dict[str, tuple[str, str]] = {
    "NULL": ("NULL", "NULL"),
    "RSA": ("RSA", "RSA"),
    "RSA_FIPS": ("RSA", "RSA"),
    "DH_DSS": ("DH", "DSS"),
    "DH_RSA": ("DH", "RSA"),
    "DHE_DSS": ("DHE", "DSS"),
    "DHE_RSA": ("DHE", "RSA"),
    "DH_anon": ("DHE", "anon"),
    "ECDH_ECDSA": ("ECDH", "ECDSA"),
    "ECDH_RSA": ("ECDH", "RSA"),
    "ECDHE_ECDSA": ("ECDHE", "ECDSA"),
    "ECDHE_RSA": ("ECDHE", "RSA"),
    "ECDH_anon": ("ECDHE", "anon"),
    "PSK": ("PSK", "PSK"),
    "DHE_PSK": ("DHE_PSK", "PSK"),
    "PSK_DHE": ("DHE_PSK", "PSK"),
    "RSA_PSK": ("RSA_PSK", "RSA"),
    "ECDHE_PSK": ("ECDHE_PSK", "PSK"),
    "KRB5": ("KRB5", "KRB5"),
    "SRP_SHA": ("SRP", "SRP"),
    "SRP_SHA_RSA": ("SRP", "RSA"),
    "SRP_SHA_DSS": ("SRP", "DSS"),
    "ECCPWD": ("ECCPWD", "ECCPWD"),
    "GOSTR341094": ("GOST", "GOST"),
    "GOSTR341001": ("GOST", "GOST"),
    "GOSTR341094_RSA": ("GOST", "RSA"),
    "GOSTR341112_256": ("GOST", "GOST"),
    "CECPQ1_RSA": ("CECPQ1", "RSA"),
    "CECPQ1_ECDSA": ("CECPQ1", "ECDSA"),
}
_FORWARD_SECRET_KX = frozenset({"DHE", "ECDHE", "DHE_PSK", "ECDHE_PSK", "CECPQ1", "any"})
_AEAD_MARKERS = ("GCM", "CCM", "POLY1305", "MGM", "AEGIS")
_BITS = (
    (re.compile(r"3DES"), 168),
    (re.compile(r"^DES40|_40$|_40_|EXPORT40|DES_CBC_40"), 40),
    (re.compile(r"RC4_56|RC2_56|RC2_CBC_56"), 56),
    (re.compile(r"^DES_"), 56),
    (re.compile(r"_256|CHACHA20|28147|KUZNYECHIK|MAGMA|AEGIS_256"), 256),
    (re.compile(r"_128|IDEA|SEED|SM4|AEGIS_128L"), 128),
)



@dataclass(frozen=True)
class CipherSuite:
    """One registry row with its parsed properties; `flags` names every weakness it has."""

    code: int
    name: str
    openssl_name: str
    min_version: str
    iana: bool
    kx: str
    auth: str
    enc: str
    bits: int
    mac: str
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def tls13(self) -> bool:
        """True for suites negotiated only in TLS 1.3 hellos."""
        return self.min_version == "TLSv1.3"

    @property
    def forward_secret(self) -> bool:
        return "forward-secret" in self.flags

    def to_json(self) -> dict[str, object]:
        """The suite as evidence: code as four hex digits (0x1302), names, parsed properties and sorted flags."""
        return {
            "code": f"0x{self.code:04X}",
            "name": self.name,
            "openssl_name": self.openssl_name or None,
            "kx": self.kx,
            "auth": self.auth,
            "enc": self.enc,
            "bits": self.bits,
            "mac": self.mac,
            "flags": sorted(self.flags),
        }


def _split_enc_mac(rest: str) -> tuple[str, str]:
    """Split the part after _WITH_ (or a TLS 1.3 name body) into (encryption, mac)."""
    rest = rest.removesuffix("_OLD")
    tokens = rest.split("_")
    if any(marker in tokens or marker in rest for marker in _AEAD_MARKERS):
        enc = re.sub(r"_(SHA256|SHA384|SHA512|SM3)$", "", rest)
        return enc, "AEAD"
    if rest == "NULL_NULL":
        return "NULL", "NULL"
    return "_".join(tokens[:-1]), tokens[-1]


def _bits(enc: str) -> int:
    if enc == "NULL":
        return 0
    for pattern, bits in _BITS:
        if pattern.search(enc):
            return bits
    return 0


def parse_name(name: str, min_version: str) -> tuple[str, str, str, int, str, frozenset[str]]:
    """Parse an IANA (or OpenSSL-only) suite name into (kx, auth, enc, bits, mac, flags).

    Flags: NULL, EXPORT, RC4, 3DES, DES, CBC, anon, forward-secret. Raises ValueError for a name
    whose key exchange is unknown, so a table edit cannot slip through unparsed.
    """
    if min_version == "TLSv1.3":
        body = name.removeprefix("TLS_")
        if body in ("SHA256_SHA256", "SHA384_SHA384"):
            kx, auth, enc, mac = "any", "any", "NULL", body.split("_")[0]
        elif body.startswith("GOSTR341112_256_WITH_"):
            kx, auth = "any", "any"
            enc, mac = _split_enc_mac(body.removeprefix("GOSTR341112_256_WITH_"))
        else:
            kx, auth = "any", "any"
            enc, mac = _split_enc_mac(body)
    elif "_WITH_" in name:
        prefix, rest = name.split("_WITH_", 1)
        prefix = re.sub(r"^(TLS|SSL)_", "", prefix)
        base = re.sub(r"_EXPORT(1024)?$", "", prefix)
        if base not in _KX_AUTH:
            raise ValueError(f"unknown key exchange in {name}")
        kx, auth = _KX_AUTH[base]
        enc, mac = _split_enc_mac(rest)
    elif name.startswith("GOST"):
        kx, auth = "GOST", "GOST"
        enc = "NULL" if "NULL" in name else "28147_CNT"
        mac = name.rsplit("-", 1)[-1]
    else:
        raise ValueError(f"cannot parse suite name {name}")
    flags: set[str] = set()
    if enc == "NULL":
        flags.add("NULL")
    if "EXPORT" in name:
        flags.add("EXPORT")
    if "RC4" in enc:
        flags.add("RC4")
    if "3DES" in enc:
        flags.add("3DES")
    elif enc.startswith("DES"):
        flags.add("DES")
    if "CBC" in enc:
        flags.add("CBC")
    if auth in ("anon", "NULL"):
        flags.add("anon")
    if kx in _FORWARD_SECRET_KX:
        flags.add("forward-secret")
    return kx, auth, enc, _bits(enc), mac, frozenset(flags)


def _build() -> dict[int, CipherSuite]:
    table: dict[int, CipherSuite] = {}
    for code, name, openssl_name, min_version, iana in SUITE_ROWS:
        kx, auth, enc, bits, mac, flags = parse_name(name, min_version)
        table[code] = CipherSuite(code, name, openssl_name, min_version, iana, kx, auth, enc,
                                  bits, mac, flags)
    return table


SUITES: dict[int, CipherSuite] = _build()
TLS13_CODES: tuple[int, ...] = tuple(c for c, s in SUITES.items() if s.tls13)
LEGACY_CODES: tuple[int, ...] = tuple(c for c, s in SUITES.items() if not s.tls13)
_BY_NAME: dict[str, CipherSuite] = {}
for _suite in SUITES.values():
    _BY_NAME.setdefault(_suite.name, _suite)
    if _suite.openssl_name:
        _BY_NAME.setdefault(_suite.openssl_name, _suite)


def suites_for(version: str) -> tuple[int, ...]:
    """Codes to offer in a hello of `version`: TLS 1.3 suites for TLSv1.3, all others otherwise."""
    return TLS13_CODES if version == "TLSv1.3" else LEGACY_CODES


def lookup(code_or_name: int | str) -> CipherSuite | None:
    """The suite for a code, an IANA name or an OpenSSL name; None when unknown."""
    if isinstance(code_or_name, int):
        return SUITES.get(code_or_name)
    return _BY_NAME.get(code_or_name)


def describe(code: int) -> dict[str, object]:
    """Evidence for a code, known or not (an unknown code keeps its number and gets a name made from it)."""
    suite = SUITES.get(code)
    if suite is not None:
        return suite.to_json()
    return {"code": f"0x{code:04X}", "name": f"UNKNOWN_0x{code:04X}", "flags": ["unknown"]}
