"""The prober against real local TLS servers (nginx with its own config, openssl s_server) on
127.0.0.1 and ::1, cross-checked with a real OpenSSL client and with testssl.sh."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.checks import tls
from tlspeer.compare import from_prober, from_testssl, have_testssl, run_testssl
from tlspeer.servers import LocalPki, nginx, nginx_available, s_server, write_pki

from auditor.checkapi import Evidence, ProbeRecord
from auditor.judge.suites import lookup
from auditor.model import Status
from auditor.tlsprobe import ScanOptions, scan

pytestmark = pytest.mark.integration

WEAK_ARGS = ["-cipher", "ALL:@SECLEVEL=0", "-min_protocol", "TLSv1", "-serverpref"]
SSL_VERSIONS = {"TLSv1.0": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    return write_pki(tmp_path_factory.mktemp("pki"))


def _scan(port: int, pki: LocalPki, addresses: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, Any]:
    options = ScanOptions(timeout=5.0, deadline=60.0, ca_bundle=str(pki.ca))
    return asyncio.run(scan("localhost", port, addresses=list(addresses), options=options))


def _judge(result: dict[str, Any], now: dt.datetime | None = None) -> dict[str, list[Any]]:
    ev = Evidence({"tls.scan": ProbeRecord("tls.scan", "ok", result)}, now or dt.datetime.now(dt.UTC))
    checks = (tls.tls_protocols, tls.tls_ciphers, tls.tls_tls13, tls.tls_certificate)
    return {c.id: list(c.judge(ev, dict(c.meta.params))) for c in checks}


def _names(entry: dict[str, Any], version: str) -> set[str]:
    return {s["name"] for s in entry["cipher_suites"].get(version, [])}


@pytest.fixture(scope="module")
def hardened(pki: LocalPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not nginx_available():
        pytest.skip("nginx not installed")
    with nginx(pki, tmp_path_factory.mktemp("nginx")) as port:
        yield port


def test_hardened_nginx_on_ipv4_and_ipv6_passes_every_tls_check(hardened: int, pki: LocalPki) -> None:
    result = _scan(hardened, pki, ("127.0.0.1", "::1"))
    assert [a["family"] for a in result["addresses"]] == ["IPv4", "IPv6"]
    for entry in result["addresses"]:
        assert entry["protocols"] == {"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False,
                                      "TLSv1.2": True, "TLSv1.3": True}
        assert _names(entry, "TLSv1.2") == {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}
        assert _names(entry, "TLSv1.3") == {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                            "TLS_AES_128_GCM_SHA256"}
        assert entry["server_preference"]["TLSv1.2"]["enforced"] is True
        assert sorted(c["auth"] for c in entry["certificates"]) == ["ECDSA", "RSA"]
    verdicts = _judge(result)
    for check_id, outcomes in verdicts.items():
        assert len(outcomes) >= 2, check_id
        assert all(o.status is Status.PASS for o in outcomes), (check_id, [o.message for o in outcomes])
    # the same evidence judged 190 days later: the 200-day certificates have under 30 days left
    later = _judge(result, dt.datetime.now(dt.UTC) + dt.timedelta(days=190))
    assert all(o.status is Status.FAIL for o in later["tls.certificate"])


def _openssl_client_accepts(port: int, version: str, name: str) -> bool:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = SSL_VERSIONS[version]
    try:
        ctx.set_ciphers(f"{name}:@SECLEVEL=0")
    except ssl.SSLError:
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls_sock:
            cipher = tls_sock.cipher()
            return cipher is not None and cipher[0] == name
    except (ssl.SSLError, OSError):
        return False


def _openssl_suites() -> list[str]:
    out = subprocess.run(["openssl", "ciphers", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"], capture_output=True,
                         text=True, check=True).stdout.strip()
    return [n for n in out.split(":") if not n.startswith("TLS_")]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
def test_weak_s_server_suites_equal_what_a_real_openssl_client_negotiates(pki: LocalPki) -> None:
    with s_server(pki, WEAK_ARGS) as port:
        result = _scan(port, pki)
        entry = result["addresses"][0]
        assert entry["protocols"]["TLSv1.0"] is True and entry["protocols"]["TLSv1.2"] is True
        for version in ("TLSv1.0", "TLSv1.2"):
            oracle = set()
            for name in _openssl_suites():
                if _openssl_client_accepts(port, version, name):
                    suite = lookup(name)
                    assert suite is not None, name
                    oracle.add(suite.name)
            assert oracle, version
            assert _names(entry, version) == oracle, version
        assert entry["server_preference"]["TLSv1.2"]["enforced"] is True
    verdicts = _judge(result)
    [protocols] = verdicts["tls.protocols"]
    assert protocols.status is Status.FAIL
    assert protocols.observed["accepted"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    [ciphers] = verdicts["tls.ciphers"]
    assert ciphers.status is Status.FAIL
    flagged = {v["suite"] for v in ciphers.observed["violations"]}
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in flagged or "TLS_RSA_WITH_AES_128_CBC_SHA" in flagged
    assert ciphers.observed["accepted_suites"]["TLSv1.2"]


def test_tls13_only_server_chain_through_python_ssl(pki: LocalPki) -> None:
    with s_server(pki, ["-tls1_3"], ecdsa=True) as port:
        result = _scan(port, pki)
    entry = result["addresses"][0]
    assert [v for v, ok in entry["protocols"].items() if ok is True] == ["TLSv1.3"]
    [chain] = entry["certificates"]
    assert chain["source"] == "TLS 1.3 through Python's ssl"
    assert [c["subject"] for c in chain["chain"]] == ["CN=localhost", "CN=Test Intermediate CA"]
    assert chain["chain"][0]["key_type"] == "EC"
    [outcome] = _judge(result)["tls.certificate"]
    assert outcome.status is Status.PASS, outcome.message


@pytest.mark.skipif(not have_testssl(), reason="testssl.sh not installed")
@pytest.mark.parametrize("variant", ["hardened", "weak"])
def test_testssl_finds_the_same_protocols_and_suites(variant: str, pki: LocalPki,
                                                     tmp_path: Path) -> None:
    if variant == "hardened":
        if not nginx_available():
            pytest.skip("nginx not installed")
        server = nginx(pki, tmp_path / "nginx")
    else:
        server = s_server(pki, ["-cipher", "AES128-SHA:DES-CBC3-SHA:ECDHE-RSA-AES128-GCM-SHA256:"
                                "DHE-RSA-CHACHA20-POLY1305:CAMELLIA256-SHA:@SECLEVEL=0", "-min_protocol", "TLSv1"])
    with server as port:
        ours = from_prober(_scan(port, pki)["addresses"][0])
        theirs = from_testssl(run_testssl(f"localhost:{port}", ip="127.0.0.1"))
    assert theirs["protocols"] == ours["protocols"]
    assert theirs["suites"] == ours["suites"]
