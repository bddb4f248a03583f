"""The content probes: where the storage root comes from, trusted material, the scan directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from auditor.errors import NotApplicable, ProbeError
from auditor.probeapi import ProbeContext
from auditor.probes.content import registry_content, scans_reports, signatures_trust, storage_root
from auditor.target import Target

from .test_content_fake import FakeRegistry, new_key, public_pem


def ctx(target: Target, evidence: dict[str, Any] | None = None) -> ProbeContext:
    async def fetch(name: str) -> Any:
        if evidence and name in evidence:
            return evidence[name]
        raise NotApplicable(f"{name} not gathered")

    def no_http() -> Any:
        raise AssertionError("the storage way must not use HTTP")

    return ProbeContext(target, None, fetch, no_http, deadline=1e12)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_storage_root_from_registry_config_and_explicit_option(tmp_path: Path):
    config = {"config.registry": {"config": {"storage": {"filesystem": {"rootdirectory": str(tmp_path)}},
                                             "http": {"host": "https://reg.example"}}}}
    assert run(storage_root(ctx(Target(inside=True), config))) == (str(tmp_path),
                                                                   "config.registry storage.filesystem")
    explicit = Target(inside=True, paths={"storage_root": "/x"})
    assert run(storage_root(ctx(explicit, config)))[1] == "--storage-root"
    s3 = {"config.registry": {"config": {"storage": {"s3": {"bucket": "b"}, "delete": {"enabled": True}}}}}
    with pytest.raises(NotApplicable, match="s3 driver"):
        run(storage_root(ctx(Target(inside=True), s3)))


def test_registry_content_from_storage_without_http(tmp_path: Path):
    reg = FakeRegistry()
    image = reg.push_image("a/b", "v1", "img")
    reg.sign_legacy("a/b", image.manifest, new_key(), reference="reg.example/a/b")
    reg.write_storage(tmp_path)
    config = {"config.registry": {"config": {"storage": {"filesystem": {"rootdirectory": str(tmp_path)}},
                                             "http": {"host": "https://reg.example"}}}}
    facts = run(registry_content.fn(ctx(Target(inside=True), config)))
    assert facts["source"] == "storage" and facts["hosts"] == ["reg.example"]
    assert [(t["repo"], t["tag"], t["digest"]) for t in facts["tags"]] == [("a/b", "v1", image.manifest.digest)]
    missing = {"config.registry": {"config": {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "no")}}}}}
    # No registry runs here: an offline review of a config file, so content is not applicable (skip) ...
    with pytest.raises(NotApplicable, match="offline review"):
        run(registry_content.fn(ctx(Target(inside=True), missing)))
    # ... but a running registry whose storage root is missing is an error, never a skip or a pass.
    running = {**missing, "host.discovery": {"registry": {"pid": 4242, "config": "/etc/docker/registry/config.yml"}}}
    with pytest.raises(ProbeError, match="not a directory"):
        run(registry_content.fn(ctx(Target(inside=True), running)))


def test_signatures_trust_loads_pems_and_trusted_root(tmp_path: Path):
    key = tmp_path / "cosign.pub"
    key.write_text(public_pem(new_key()))
    root = tmp_path / "trusted_root.json"
    root.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
    target = Target(inside=True, cosign_keys=(str(key), str(tmp_path / "gone.pub")), paths={"trusted_root": str(root)})
    facts = run(signatures_trust.fn(ctx(target)))
    assert facts["keys"][0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "gone.pub" in facts["errors"][0]
    assert "trustedroot" in facts["trusted_root_json"]


def test_scans_reports_reads_the_scan_dir(tmp_path: Path):
    (tmp_path / "a_b_v1.json").write_text('{"SchemaVersion": 2, "Results": []}')
    (tmp_path / "broken.json").write_text("{nope")
    (tmp_path / ".trivyignore").write_text("CVE-1\n")
    facts = run(scans_reports.fn(ctx(Target(inside=True, paths={"scan_dir": str(tmp_path)}))))
    assert set(facts["reports"]) == {"a_b_v1.json", "broken.json"}
    assert "unreadable" in facts["reports"]["broken.json"]["parse_error"]
    assert facts["ignore"] == [{"id": "CVE-1", "source": ".trivyignore"}]
    assert run(scans_reports.fn(ctx(Target(inside=True))))["scan_dir"] is None
