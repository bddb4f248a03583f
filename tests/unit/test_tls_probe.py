"""The `tls.scan` probe through the probe API, against the scripted peer on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tlspeer import PeerConfig, ScriptedPeer

from auditor.errors import NotApplicable, ProbeError
from auditor.probeapi import ProbeContext
from auditor.probes.tls import tls_scan
from auditor.target import Target


def _context(target: Target, budget: float = 30.0) -> ProbeContext:
    async def fetch(name: str) -> Any:
        raise AssertionError(f"tls.scan needs no other evidence ({name})")

    def no_http() -> Any:
        raise AssertionError("tls.scan does not use the HTTP client")

    return ProbeContext(target, None, fetch, no_http, asyncio.get_running_loop().time() + budget)


def _probe_peer(config: PeerConfig, budget: float = 30.0, **paths: str) -> Any:
    async def go() -> Any:
        peer = await ScriptedPeer(config).start()
        try:
            target = Target(url=f"https://127.0.0.1:{peer.port}", paths=paths)
            return await tls_scan.fn(_context(target, budget))
        finally:
            await peer.stop()
    return asyncio.run(go())


def test_probe_returns_json_facts_for_the_url() -> None:
    result = _probe_peer(PeerConfig(suites={"TLSv1.2": [0xC030], "TLSv1.3": [0x1302]}))
    assert tls_scan.name == "tls.scan"
    assert result["server_name"] == "127.0.0.1"
    [entry] = result["addresses"]
    assert entry["protocols"]["TLSv1.2"] is True and entry["protocols"]["TLSv1.3"] is True
    assert [s["name"] for s in entry["cipher_suites"]["TLSv1.3"]] == ["TLS_AES_256_GCM_SHA384"]


def test_hostile_peer_makes_the_probe_fail_with_reasons() -> None:
    with pytest.raises(ProbeError, match="junk answer"):
        _probe_peer(PeerConfig(behaviour="junk"))


def test_no_url_is_not_applicable_and_plain_http_is_an_error() -> None:
    async def go(target: Target) -> Any:
        return await tls_scan.fn(_context(target))
    with pytest.raises(NotApplicable):
        asyncio.run(go(Target(url=None, inside=True)))
    with pytest.raises(ProbeError, match="plain http"):
        asyncio.run(go(Target(url="http://registry.test")))


def test_missing_ca_bundle_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="does not exist"):
        _probe_peer(PeerConfig(suites={"TLSv1.2": [0xC030]}), ca_bundle=str(tmp_path / "none.pem"))


def test_no_time_left_is_an_error() -> None:
    with pytest.raises(ProbeError, match="no time left"):
        _probe_peer(PeerConfig(suites={"TLSv1.2": [0xC030]}), budget=2.0)
