"""Record builders and parsers of the TLS prober (pure bytes)."""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from tlspeer import parse_client_hello
from tlspeer.peer import certificate_message, handshake, record, server_hello, sslv2_server_hello

from auditor.tlsprobe import records as rec
from auditor.tlsprobe.records import WireError


@pytest.mark.parametrize("version,client_version,record_version", [
    ("SSLv3", 0x0300, 0x0300), ("TLSv1.0", 0x0301, 0x0301), ("TLSv1.1", 0x0302, 0x0301),
    ("TLSv1.2", 0x0303, 0x0301), ("TLSv1.3", 0x0303, 0x0301),
])
def test_client_hello_versions_and_suites(version: str, client_version: int, record_version: int) -> None:
    suites = [0xC030, 0x002F, 0x1301]
    hello = parse_client_hello(rec.build_client_hello(version, suites, "registry.test"))
    assert hello.client_version == client_version
    assert hello.record_version == record_version
    assert hello.suites == suites
    assert hello.server_name == "registry.test"
    assert (0x0304 in hello.supported_versions) is (version == "TLSv1.3")
    assert (rec.EXT_SIGNATURE_ALGORITHMS in hello.extensions) is (version in ("TLSv1.2", "TLSv1.3"))
    assert hello.extensions[rec.EXT_RENEGOTIATION_INFO] == b"\x00"
    assert hello.extensions[rec.EXT_EC_POINT_FORMATS] == b"\x03\x00\x01\x02"
    groups = hello.extensions[rec.EXT_SUPPORTED_GROUPS]
    assert struct.unpack("!HH", groups[2:6]) == (29, 23)


def test_tls13_hello_carries_x25519_and_p256_key_shares() -> None:
    hello = parse_client_hello(rec.build_client_hello("TLSv1.3", [0x1301], None))
    shares = hello.key_share_groups
    assert sorted(shares) == [rec.GROUP_SECP256R1, rec.GROUP_X25519]
    assert len(shares[rec.GROUP_X25519]) == 32
    assert len(shares[rec.GROUP_SECP256R1]) == 65 and shares[rec.GROUP_SECP256R1][0] == 4
    assert len(hello.session_id) == 32
    assert hello.server_name is None


def test_no_sni_for_ip_literals() -> None:
    for literal in ("127.0.0.1", "::1", "[2001:db8::1]"):
        hello = parse_client_hello(rec.build_client_hello("TLSv1.2", [0xC030], literal))
        assert rec.EXT_SERVER_NAME not in hello.extensions


def test_builder_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError):
        rec.build_client_hello("SSLv2", [0x0001])
    with pytest.raises(ValueError):
        rec.build_client_hello("TLSv1.2", [])


def test_server_hello_round_trip_and_hrr() -> None:
    body = server_hello(0x0303, 0xC02F, b"abc")[4:]
    parsed = rec.parse_server_hello(body)
    assert (parsed.version, parsed.cipher_suite, parsed.session_id) == (0x0303, 0xC02F, b"abc")
    assert not parsed.is_hello_retry_request
    tls13 = rec.parse_server_hello(server_hello(0x0304, 0x1302, tls13=True)[4:])
    assert tls13.legacy_version == 0x0303 and tls13.version == 0x0304
    hrr = rec.parse_server_hello(server_hello(0x0304, 0x1301, hrr=True, tls13=True)[4:])
    assert hrr.is_hello_retry_request and hrr.version == 0x0304
    sslv3 = rec.parse_server_hello(server_hello(0x0300, 0x000A)[4:])
    assert sslv3.version == 0x0300 and sslv3.extensions == {}


def test_truncated_server_hello_is_a_wire_error() -> None:
    body = server_hello(0x0303, 0xC02F)[4:]
    for cut in (0, 1, 10, 34, 36, len(body) - 1):
        if cut == len(body) - 1 and body[-2:] == b"\x00\x00":
            continue
        with pytest.raises(WireError):
            rec.parse_server_hello(body[:cut])


def test_records_split_and_tail_kept() -> None:
    stream = record(22, 0x0303, b"abc") + record(21, 0x0303, b"\x02\x28") + record(22, 0x0303, b"xyz")[:6]
    records, tail = rec.parse_records(stream)
    assert [(r.content_type, r.fragment) for r in records] == [(22, b"abc"), (21, b"\x02\x28")]
    assert tail == record(22, 0x0303, b"xyz")[:6]
    assert rec.parse_alert(records[1].fragment) == (2, 40, "handshake_failure")


@pytest.mark.parametrize("junk", [b"HTTP/1.1 400 Bad Request\r\n", b"\x16\x09\x09\x00\x01x",
                                  b"\x17\x03\x03\xff\xff", b"SSH-2.0-OpenSSH"])
def test_junk_is_not_a_record(junk: bytes) -> None:
    with pytest.raises(WireError):
        rec.parse_records(junk)


def test_handshake_messages_reassembled_across_records() -> None:
    flight = server_hello(0x0303, 0xC030) + certificate_message([b"A" * 300, b"B" * 10]) + handshake(14, b"")
    buffer = rec.HandshakeBuffer()
    messages = []
    for i in range(0, len(flight), 7):
        messages += buffer.feed(flight[i:i + 7])
    assert [m[0] for m in messages] == [2, 11, 14]
    assert rec.parse_certificate_list(messages[1][1]) == [b"A" * 300, b"B" * 10]


def test_certificate_list_length_mismatch() -> None:
    body = certificate_message([b"A" * 10])[4:]
    with pytest.raises(WireError):
        rec.parse_certificate_list(body[:-1])


def test_sslv2_client_hello_layout() -> None:
    data = rec.build_sslv2_client_hello([0x0700C0, 0x010080], challenge=b"C" * 16)
    assert data[0] & 0x80 and ((data[0] & 0x7F) << 8 | data[1]) == len(data) - 2
    msg_type, version, spec_len, sid_len, chal_len = struct.unpack("!BHHHH", data[2:11])
    assert (msg_type, version, spec_len, sid_len, chal_len) == (1, 2, 6, 0, 16)
    assert data[11:17] == bytes.fromhex("0700c0010080") and data[17:] == b"C" * 16


def test_sslv2_server_hello_parse() -> None:
    raw = sslv2_server_hello([0x0700C0, 0x020080], b"CERT")
    assert rec.sslv2_record_length(raw) == len(raw)
    hello = rec.parse_sslv2_server_hello(raw)
    assert hello.cipher_specs == (0x0700C0, 0x020080) and hello.certificate == b"CERT"
    with pytest.raises(WireError):
        rec.parse_sslv2_server_hello(raw[:-20])


def test_parsers_raise_only_wire_errors_on_random_bytes() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        for parser in (rec.parse_server_hello, rec.parse_certificate_list, rec.parse_sslv2_server_hello,
                       rec.parse_alert):
            with contextlib.suppress(WireError):
                parser(data)
        with contextlib.suppress(WireError):
            rec.parse_records(bytes([22, 3, 3]) + data)


def test_hellos_of_256_to_511_bytes_are_padded_to_512() -> None:
    sizes = {}
    for count in range(1, 200):
        data = rec.build_client_hello("TLSv1.2", list(range(1, count + 1)), "registry.test")
        handshake_len = len(data) - 5
        sizes[count] = handshake_len
        assert not 0xFF < handshake_len < 0x200, (count, handshake_len)
        hello = parse_client_hello(data)
        assert hello.suites == list(range(1, count + 1))
    assert 0x200 in sizes.values()
