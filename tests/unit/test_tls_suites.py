"""The cipher-suite table: complete, consistent with OpenSSL's own table, flags parsed right."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.judge.suite_data import SUITE_ROWS
from auditor.judge.suites import LEGACY_CODES, SUITES, TLS13_CODES, describe, lookup, parse_name

TESTSSL_MAPPING = Path("/etc/testssl/cipher-mapping.txt")


def _openssl_table() -> list[dict[str, str]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl binary not installed")
    out = subprocess.run(["openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        row = {"code": fields[0], "name": fields[2], "version": fields[3]}
        row.update(dict(f.split("=", 1) for f in fields[4:] if "=" in f))
        rows.append(row)
    return rows


def _code(text: str) -> int:
    return int(text.replace("0x", "").replace(",", ""), 16)


def test_codes_unique_and_registry_complete() -> None:
    codes = [row[0] for row in SUITE_ROWS]
    assert len(codes) == len(set(codes)) == len(SUITES)
    assert all(0 <= c <= 0xFFFF for c in codes)
    iana = [s for s in SUITES.values() if s.iana]
    # IANA's registry: 0x0000-0x001B, 0x001E-0x0046, 0x0067-0x006D, 0x0084-0x00C7, 0x1301-0x1307,
    # 0xC001-0xC0B5, 0xC100-0xC106, 0xCCA8-0xCCAE, 0xD001-0xD003, 0xD005
    expected = (set(range(0x00, 0x1C)) | set(range(0x1E, 0x47)) | set(range(0x67, 0x6E))
                | set(range(0x84, 0xC8)) | set(range(0x1301, 0x1308)) | set(range(0xC001, 0xC0B6))
                | set(range(0xC100, 0xC107)) | set(range(0xCCA8, 0xCCAF)) | {0xD001, 0xD002, 0xD003, 0xD005})
    assert {s.code for s in iana} == expected
    assert 0x00FF not in SUITES and 0x5600 not in SUITES  # signalling values are not suites
    assert set(TLS13_CODES) | set(LEGACY_CODES) == set(SUITES)
    assert not set(TLS13_CODES) & set(LEGACY_CODES)


def test_every_openssl_suite_is_in_the_table_with_its_openssl_name() -> None:
    for row in _openssl_table():
        suite = SUITES.get(_code(row["code"]))
        assert suite is not None, row
        if row["version"] == "TLSv1.3":
            assert suite.tls13 and suite.name == row["name"], row
        else:
            assert suite.openssl_name == row["name"], row
            assert not suite.tls13


def test_properties_agree_with_openssl() -> None:
    for row in _openssl_table():
        suite = SUITES[_code(row["code"])]
        enc, mac, kx, au = row["Enc"], row["Mac"], row["Kx"], row["Au"]
        assert ("NULL" in suite.flags) == (enc == "None"), row
        assert ("3DES" in suite.flags) == enc.startswith("3DES"), row
        assert ("RC4" in suite.flags) == enc.startswith("RC4"), row
        assert (suite.mac == "AEAD") == (mac == "AEAD"), row
        if row["version"] != "TLSv1.3":
            assert ("CBC" in suite.flags) == (mac != "AEAD" and enc != "None"), row
            assert ("anon" in suite.flags) == (au == "None"), row
            ephemeral = kx in ("ECDH", "DH", "ECDHEPSK", "DHEPSK") and not kx.startswith(("ECDH/", "DH/"))
            assert suite.forward_secret == ephemeral, row
        bits = int(re.search(r"\((\d+)\)", enc).group(1)) if "(" in enc else 0  # type: ignore[union-attr]
        assert suite.bits == bits, row


@pytest.mark.skipif(not TESTSSL_MAPPING.is_file(), reason="testssl.sh not installed")
def test_every_two_byte_code_testssl_knows_is_in_the_table() -> None:
    for line in TESTSSL_MAPPING.read_text().splitlines():
        fields = line.split()
        if len(fields[0]) != 9 or fields[0] in ("0x00,0xFF", "0x56,0x00"):
            continue
        suite = SUITES.get(_code(fields[0]))
        assert suite is not None, line
        if fields[3] != "-":
            assert suite.name == fields[3], line


@pytest.mark.parametrize("name,kx,auth,enc,bits,mac,flags", [
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE", "RSA", "AES_256_GCM", 256, "AEAD", {"forward-secret"}),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "RSA", "AES_128_CBC", 128, "SHA", {"CBC"}),
    ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "RSA", "RSA", "RC4_40", 40, "MD5", {"EXPORT", "RC4"}),
    ("TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", "DHE", "RSA", "3DES_EDE_CBC", 168, "SHA",
     {"3DES", "CBC", "forward-secret"}),
    ("TLS_DH_anon_WITH_AES_256_GCM_SHA384", "DHE", "anon", "AES_256_GCM", 256, "AEAD",
     {"anon", "forward-secret"}),
    ("TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", "ECDH", "RSA", "AES_256_GCM", 256, "AEAD", set()),
    ("TLS_RSA_WITH_NULL_SHA256", "RSA", "RSA", "NULL", 0, "SHA256", {"NULL"}),
    ("TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA", "KRB5", "KRB5", "DES_CBC_40", 40, "SHA",
     {"EXPORT", "DES", "CBC"}),
    ("TLS_PSK_DHE_WITH_AES_128_CCM_8", "DHE_PSK", "PSK", "AES_128_CCM_8", 128, "AEAD", {"forward-secret"}),
    ("TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256", "ECDHE_PSK", "PSK", "AES_128_CCM_8", 128, "AEAD",
     {"forward-secret"}),
])
def test_parse_name(name: str, kx: str, auth: str, enc: str, bits: int, mac: str, flags: set[str]) -> None:
    assert parse_name(name, "TLSv1.2") == (kx, auth, enc, bits, mac, frozenset(flags))


def test_tls13_suites() -> None:
    assert lookup("TLS_AES_256_GCM_SHA384").tls13  # type: ignore[union-attr]
    null13 = lookup("TLS_SHA256_SHA256")
    assert null13 is not None and null13.tls13 and "NULL" in null13.flags
    assert {SUITES[c].name for c in TLS13_CODES} >= {"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
                                                       "TLS_AES_128_CCM_8_SHA256", "TLS_SM4_GCM_SM3"}


def test_lookup_by_either_name_and_unknown_codes() -> None:
    assert lookup("ECDHE-RSA-AES256-GCM-SHA384") is lookup("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    assert lookup(0xC030) is lookup("ECDHE-RSA-AES256-GCM-SHA384")
    assert describe(0xC030)["code"] == "0xC030"
    assert describe(0x0A0A) == {"code": "0x0A0A", "name": "UNKNOWN_0x0A0A", "flags": ["unknown"]}


def test_unknown_key_exchange_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_name("TLS_FOO_WITH_AES_128_GCM_SHA256", "TLSv1.2")
