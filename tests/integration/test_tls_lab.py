"""The prober inside the lab's ci namespace, against the lab's Apache (hardened and weak): the
tls.* verdicts, and the protocol and suite lists compared with testssl.sh's, per address."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.checks import tls
from tlspeer.compare import from_prober, from_testssl, have_testssl, run_testssl

from auditor.checkapi import Evidence, ProbeRecord
from auditor.model import Status

pytestmark = pytest.mark.integration


def _lab(request: pytest.FixtureRequest, variant: str) -> Any:
    """The lab fixture from tests/conftest.py; without it, a lab variant that is already up."""
    try:
        return request.getfixturevalue(f"lab_{variant}")
    except pytest.FixtureLookupError:
        pass
    try:
        import lab
    except ImportError:
        pytest.skip("tests/lab is not importable")
    if lab.available() is not None or not lab.is_up(variant):
        pytest.skip(f"no lab_{variant} fixture and the {variant} lab is not up")
    return lab.load(variant)


def _scan_in_ci(info: Any) -> dict[str, Any]:
    import lab

    host = urlsplit(info.url).hostname
    cp = lab.run_in(info.namespaces["ci"], [sys.executable, "-m", "auditor.tlsprobe", host, "443",
                                            "--ca-bundle", str(info.ca), "--deadline", "60"], timeout=90)
    assert cp.returncode == 0, cp.stderr
    result: dict[str, Any] = json.loads(cp.stdout)
    return result


def _judge(result: dict[str, Any]) -> dict[str, list[Any]]:
    ev = Evidence({"tls.scan": ProbeRecord("tls.scan", "ok", result)}, dt.datetime.now(dt.UTC))
    checks = (tls.tls_protocols, tls.tls_ciphers, tls.tls_tls13, tls.tls_certificate)
    return {c.id: list(c.judge(ev, dict(c.meta.params))) for c in checks}


@pytest.mark.parametrize("variant", ["hardened", "weak"])
def test_lab_verdicts(request: pytest.FixtureRequest, variant: str) -> None:
    info = _lab(request, variant)
    result = _scan_in_ci(info)
    assert {a["family"] for a in result["addresses"]} == {"IPv4", "IPv6"}
    statuses = {cid: {o.status for o in outcomes} for cid, outcomes in _judge(result).items()}
    if variant == "hardened":
        assert statuses == {cid: {Status.PASS} for cid in statuses}
    else:
        assert statuses == {"tls.protocols": {Status.FAIL}, "tls.ciphers": {Status.FAIL},
                            "tls.tls13": {Status.PASS}, "tls.certificate": {Status.FAIL}}
        for entry in result["addresses"]:
            assert entry["protocols"]["TLSv1.0"] is True and entry["protocols"]["TLSv1.1"] is True
            names = {s["name"] for s in entry["cipher_suites"]["TLSv1.2"]}
            assert {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"} <= names


@pytest.mark.skipif(not have_testssl(), reason="testssl.sh not installed")
@pytest.mark.parametrize("variant", ["hardened", "weak"])
def test_lab_prober_equals_testssl(request: pytest.FixtureRequest, variant: str) -> None:
    info = _lab(request, variant)
    result = _scan_in_ci(info)
    host = urlsplit(info.url).hostname
    prefix = ["ip", "netns", "exec", info.namespaces["ci"]]
    for entry in result["addresses"]:
        theirs = from_testssl(run_testssl(f"{host}:443", ip=entry["address"], prefix=prefix))
        ours = from_prober(entry)
        assert theirs["protocols"] == ours["protocols"], entry["address"]
        assert theirs["suites"] == ours["suites"], entry["address"]
