"""OCSP stapling on the wire: the prober against real `openssl s_server -status_file` servers.

Each server staples a DER OCSP response made for its leaf (good, revoked, stale) or staples nothing;
the prober asks with status_request in a TLS 1.2 ClientHello, records the CertificateStatus
message, and tls.ocsp-stapling judges it. The lab's Apache with its OCSP responder is covered by
tests/integration/test_lab_audit.py (hardened staples, weak does not).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.checks import tls
from tlspeer.pki import Issued, issue, make_pki
from tlspeer.servers import LocalPki, s_server

from auditor.checkapi import Evidence, ProbeRecord
from auditor.model import Status
from auditor.tlsprobe import ScanOptions, scan

pytestmark = pytest.mark.integration
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _response(leaf: Issued, issuer: Issued, status: ocsp.OCSPCertStatus, this_update: dt.datetime,
              next_update: dt.datetime) -> bytes:
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf.cert, issuer=issuer.cert, algorithm=hashes.SHA1(), cert_status=status, this_update=this_update,
        next_update=next_update, revocation_time=this_update if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalPki, dict[str, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    work = tmp_path_factory.mktemp("ocsp")
    pki = make_pki()
    names = {"dns": ("localhost",), "ips": ("127.0.0.1",), "not_before": NOW - dt.timedelta(days=1), "days": 90}
    leaf = issue("localhost", pki.intermediate, **names)  # type: ignore[arg-type]
    local = LocalPki(work / "ca.pem", work / "leaf.pem", work / "leaf.key", work / "leaf.pem", work / "leaf.key",
                     work / "intermediate.pem")
    local.ca.write_text(pki.root.pem)
    local.intermediate.write_text(pki.intermediate.pem)
    local.rsa_cert.write_text(leaf.pem + pki.intermediate.pem)
    local.rsa_key.write_bytes(leaf.key_pem())
    hour = dt.timedelta(hours=1)
    responses = {
        "good": _response(leaf, pki.intermediate, ocsp.OCSPCertStatus.GOOD, NOW - hour, NOW + hour),
        "revoked": _response(leaf, pki.intermediate, ocsp.OCSPCertStatus.REVOKED, NOW - hour, NOW + hour),
        "stale": _response(leaf, pki.intermediate, ocsp.OCSPCertStatus.GOOD, NOW - 3 * hour, NOW - 2 * hour),
    }
    files = {}
    for name, der in responses.items():
        files[name] = work / f"{name}.der"
        files[name].write_bytes(der)
    return local, files


def _stapling(pki: LocalPki, args: list[str]) -> tuple[dict[str, Any], list[Any]]:
    with s_server(pki, ["-tls1_2", *args]) as port:
        options = ScanOptions(timeout=5.0, deadline=60.0, ca_bundle=str(pki.ca))
        result = asyncio.run(scan("localhost", port, addresses=["127.0.0.1"], options=options))
    ev = Evidence({"tls.scan": ProbeRecord("tls.scan", "ok", result)}, NOW)
    outcomes = list(tls.tls_ocsp_stapling.judge(ev, dict(tls.tls_ocsp_stapling.meta.params)))
    chain = result["addresses"][0]["certificates"][0]
    return chain["ocsp_stapling"], outcomes


def test_a_good_stapled_response_passes(setup: tuple[LocalPki, dict[str, Path]]) -> None:
    pki, files = setup
    facts, outcomes = _stapling(pki, ["-status_file", str(files["good"])])
    assert facts["status_request_echoed"] and facts["stapled"]
    assert facts["response"]["response_status"] == "SUCCESSFUL" and facts["response"]["cert_status"] == "GOOD"
    assert facts["response"]["about_leaf"] is True
    assert [o.status for o in outcomes] == [Status.PASS], outcomes


def test_a_revoked_or_stale_staple_fails(setup: tuple[LocalPki, dict[str, Path]]) -> None:
    pki, files = setup
    facts, outcomes = _stapling(pki, ["-status_file", str(files["revoked"])])
    assert facts["response"]["cert_status"] == "REVOKED"
    assert [o.status for o in outcomes] == [Status.FAIL] and "REVOKED" in outcomes[0].message
    facts, outcomes = _stapling(pki, ["-status_file", str(files["stale"])])
    assert [o.status for o in outcomes] == [Status.FAIL] and "stale" in outcomes[0].message


def test_no_staple_fails_and_says_why(setup: tuple[LocalPki, dict[str, Path]]) -> None:
    pki, _ = setup
    facts, outcomes = _stapling(pki, [])
    assert facts == {"asked_in": "TLSv1.2", "status_request_echoed": False, "stapled": False, "responder_urls": []}
    assert [o.status for o in outcomes] == [Status.FAIL]
    assert "names no OCSP responder" in outcomes[0].message
