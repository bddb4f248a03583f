"""The prober against the scripted raw-socket peer (tests/tlspeer) on loopback: versions and
suites no local server offers (SSLv2, SSLv3, suites OpenSSL lacks), HRR, server order, and
hostile peers that must end in error reasons within the deadline."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlspeer import PeerConfig, ScriptedPeer

from auditor.tlsprobe import ScanOptions, scan
from auditor.tlsprobe import handshake as hs

# suites the local OpenSSL cannot offer or accept
KRB5_3DES = 0x001F            # TLS_KRB5_WITH_3DES_EDE_CBC_SHA
RSA_EXPORT_RC4 = 0x0003       # TLS_RSA_EXPORT_WITH_RC4_40_MD5
SEED = 0x0096                 # TLS_RSA_WITH_SEED_CBC_SHA
ECDHE_RSA_AES256_GCM = 0xC030
ECDHE_ECDSA_AES256_GCM = 0xC02C
ECDHE_RSA_AES128_GCM = 0xC02F
AES_128_CCM_8_SHA256 = 0x1305
AES_256_GCM = 0x1302


def _run(config: PeerConfig, hosts: tuple[str, ...] = ("127.0.0.1",),
         **options: Any) -> tuple[dict[str, Any], ScriptedPeer]:
    async def go() -> tuple[dict[str, Any], ScriptedPeer]:
        peer = await ScriptedPeer(config).start(hosts)
        try:
            opts = ScanOptions(**{"timeout": 2.0, "deadline": 10.0, "certificates": False} | options)
            result = await scan("peer.test", peer.port, addresses=list(hosts), options=opts)
        finally:
            await peer.stop()
        return result, peer
    return asyncio.run(go())


def _names(entry: dict[str, Any], version: str) -> list[str]:
    return sorted(s["name"] for s in entry["cipher_suites"].get(version, []))


def test_old_versions_and_suites_openssl_lacks_are_found() -> None:
    config = PeerConfig(suites={
        "SSLv3": [RSA_EXPORT_RC4, KRB5_3DES],
        "TLSv1.0": [SEED, KRB5_3DES],
        "TLSv1.2": [ECDHE_RSA_AES256_GCM, SEED],
    }, sslv2_specs=[0x0700C0, 0x020080])
    result, peer = _run(config)
    entry = result["addresses"][0]
    assert entry["protocols"] == {"SSLv2": True, "SSLv3": True, "TLSv1.0": True, "TLSv1.1": False,
                                  "TLSv1.2": True, "TLSv1.3": False}
    assert _names(entry, "SSLv3") == ["TLS_KRB5_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_EXPORT_WITH_RC4_40_MD5"]
    assert _names(entry, "TLSv1.0") == ["TLS_KRB5_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_SEED_CBC_SHA"]
    assert _names(entry, "TLSv1.2") == ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_SEED_CBC_SHA"]
    assert _names(entry, "SSLv2") == ["SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "SSL_CK_RC4_128_EXPORT40_WITH_MD5"]
    assert entry["enumeration_errors"] == {}
    # the SSLv3 hello really was SSLv3 on the wire
    assert any(h.client_version == 0x0300 and h.record_version == 0x0300 for h in peer.hellos)


@pytest.mark.parametrize("server_order", [True, False])
def test_server_preference_is_detected(server_order: bool) -> None:
    config = PeerConfig(suites={"TLSv1.2": [ECDHE_RSA_AES128_GCM, ECDHE_RSA_AES256_GCM, SEED]},
                        server_order=server_order)
    result, _ = _run(config)
    entry = result["addresses"][0]
    assert len(entry["cipher_suites"]["TLSv1.2"]) == 3
    assert entry["server_preference"]["TLSv1.2"]["enforced"] is server_order


def test_tls13_with_hello_retry_request_counts_as_accepted() -> None:
    config = PeerConfig(suites={"TLSv1.3": [AES_256_GCM, AES_128_CCM_8_SHA256]}, hrr=True)
    result, peer = _run(config)
    entry = result["addresses"][0]
    assert entry["protocols"]["TLSv1.3"] is True
    assert entry["protocol_answers"]["TLSv1.3"] == "HelloRetryRequest"
    assert _names(entry, "TLSv1.3") == ["TLS_AES_128_CCM_8_SHA256", "TLS_AES_256_GCM_SHA384"]
    tls13 = [h for h in peer.hellos if 0x0304 in h.supported_versions]
    assert tls13 and all(sorted(h.key_share_groups) == [23, 29] for h in tls13)
    assert len(tls13[0].key_share_groups[29]) == 32 and len(tls13[0].key_share_groups[23]) == 65


def test_close_without_alert_is_a_refusal_when_the_server_speaks_tls() -> None:
    config = PeerConfig(suites={"TLSv1.2": [ECDHE_RSA_AES256_GCM]}, close_instead_of_alert=True)
    result, _ = _run(config)
    entry = result["addresses"][0]
    assert entry["protocols"]["TLSv1.2"] is True
    assert entry["protocols"]["TLSv1.0"] is False
    assert entry["protocols"]["SSLv2"] is False
    assert _names(entry, "TLSv1.2") == ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]


def test_ipv4_and_ipv6_addresses_are_each_scanned() -> None:
    config = PeerConfig(suites={"TLSv1.2": [ECDHE_ECDSA_AES256_GCM]})
    result, _ = _run(config, hosts=("127.0.0.1", "::1"))
    families = [(a["address"], a["family"]) for a in result["addresses"]]
    assert families == [("127.0.0.1", "IPv4"), ("::1", "IPv6")]
    for entry in result["addresses"]:
        assert entry["protocols"]["TLSv1.2"] is True
        assert _names(entry, "TLSv1.2") == ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]


def test_certificate_flight_split_over_small_records_is_reassembled() -> None:
    ders = [b"\x30\x03\x02\x01\x01" * 40, b"\x30\x03\x02\x01\x02" * 30]
    config = PeerConfig(suites={"TLSv1.2": [ECDHE_RSA_AES256_GCM]}, certificates=ders, record_size=37)

    async def go() -> hs.HelloResult:
        peer = await ScriptedPeer(config).start()
        try:
            return await hs.attempt("127.0.0.1", peer.port, "TLSv1.2", [ECDHE_RSA_AES256_GCM],
                                    "peer.test", timeout=2.0, want_certificate=True)
        finally:
            await peer.stop()
    result = asyncio.run(go())
    assert result.accepted and result.certificates == ders


def test_sni_is_sent_for_names_and_not_for_addresses() -> None:
    config = PeerConfig(suites={"TLSv1.2": [ECDHE_RSA_AES256_GCM]})

    async def go(name: str) -> ScriptedPeer:
        peer = await ScriptedPeer(config).start()
        try:
            await hs.attempt("127.0.0.1", peer.port, "TLSv1.2", [ECDHE_RSA_AES256_GCM], name, timeout=2.0)
        finally:
            await peer.stop()
        return peer
    assert asyncio.run(go("registry.example.test")).hellos[0].server_name == "registry.example.test"
    assert asyncio.run(go("127.0.0.1")).hellos[0].server_name is None


HOSTILE = {
    "junk": "junk answer",
    "reset": "reset",
    "close": "closed",
    "silent": "timeout",
    "trickle": "timeout",
    "garbage": "junk answer",
    "endless": "no ServerHello",
}


@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
def test_hostile_peer_ends_in_error_reasons_within_the_deadline(behaviour: str) -> None:
    config = PeerConfig(behaviour=behaviour, suites={"TLSv1.2": [ECDHE_RSA_AES256_GCM]},
                        trickle_interval=0.2)
    start = time.monotonic()
    result, _ = _run(config, timeout=1.0, deadline=4.0)
    elapsed = time.monotonic() - start
    assert elapsed < 6.0
    entry = result["addresses"][0]
    values = list(entry["protocols"].values())
    assert all(isinstance(v, str) and v.startswith("error: ") for v in values), entry["protocols"]
    assert any(HOSTILE[behaviour] in v for v in values), entry["protocols"]
    assert entry["cipher_suites"] == {}


def test_deadline_bounds_a_scan_of_a_silent_peer_with_long_handshake_timeouts() -> None:
    config = PeerConfig(behaviour="silent")
    start = time.monotonic()
    result, _ = _run(config, timeout=30.0, deadline=1.5)
    assert time.monotonic() - start < 4.0
    values = result["addresses"][0]["protocols"].values()
    assert all(isinstance(v, str) and "timeout" in v for v in values)


def test_connection_refused_is_an_error_not_a_refusal() -> None:
    async def go() -> dict[str, Any]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await scan("127.0.0.1", port, options=ScanOptions(timeout=1.0, deadline=3.0))
    result = asyncio.run(go())
    [entry] = result["addresses"]
    assert all(v == "error: connect: connection refused" for v in entry["protocols"].values())
    assert entry["reachable"] is False
    assert entry["error"] == "error: unreachable: connect: connection refused"
    assert entry["cipher_suites"] == {}


def test_unresolvable_host_is_an_error_entry() -> None:
    result = asyncio.run(scan("no-such-host.invalid", 443, options=ScanOptions(timeout=2.0, deadline=3.0)))
    assert result["addresses"] == []
    assert result["errors"] and result["errors"][0].startswith("error: cannot resolve no-such-host.invalid")
