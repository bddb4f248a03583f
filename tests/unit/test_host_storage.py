"""The filesystem driver's layout, built in a tmp dir: largest layer through index manifests,
unreferenced blobs, incomplete uploads; and storage.*, registry.stale-uploads judged on it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from auditor.checkapi import Evidence, ProbeRecord
from auditor.host import storage_layout
from auditor.model import Status
from auditor.plugins import load_checks
from auditor.probes.storage import storage_root

from .helpers import NOW, judge

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class Layout:
    """Writes a registry v2 layout the way distribution 2.8 does."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.v2 = root / "docker/registry/v2"

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = storage_layout.blob_data(self.v2, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return digest

    def link(self, path: Path, digest: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest)

    def image(self, repo: str, layer_sizes: list[int], seed: str) -> tuple[str, int]:
        config = self.blob(json.dumps({"architecture": "amd64", "seed": seed}).encode())
        layers = []
        for i, size in enumerate(layer_sizes):
            data = (seed + str(i)).encode().ljust(size, b"x")
            digest = self.blob(data)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                           "size": size})
            self.link(self.v2 / "repositories" / repo / "_layers" / digest.replace(":", "/") / "link", digest)
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                      "size": 50}, "layers": layers}).encode()
        digest = self.blob(body)
        self.revision(repo, digest)
        return digest, len(body)

    def index(self, repo: str, children: list[tuple[str, int, str]]) -> str:
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": {"os": "linux", "architecture": a}}
            for d, s, a in children]}).encode()
        digest = self.blob(body)
        self.revision(repo, digest)
        return digest

    def revision(self, repo: str, digest: str) -> None:
        hexpart = digest.split(":")[1]
        self.link(self.v2 / "repositories" / repo / "_manifests/revisions/sha256" / hexpart / "link", digest)

    def tag(self, repo: str, tag: str, digest: str) -> None:
        self.link(self.v2 / "repositories" / repo / "_manifests/tags" / tag / "current/link", digest)

    def upload(self, repo: str, uuid: str, started: str | None) -> None:
        d = self.v2 / "repositories" / repo / "_uploads" / uuid
        (d / "hashstates/sha256").mkdir(parents=True)
        (d / "data").write_bytes(b"y" * 1000)
        if started is not None:
            (d / "startedat").write_text(started)


@pytest.fixture
def built(tmp_path: Path) -> Layout:
    lay = Layout(tmp_path / "storage")
    web, _ = lay.image("app/web", [100, 3000], "web")
    lay.tag("app/web", "v1", web)
    arm, arm_size = lay.image("multi", [5000], "arm")
    amd, amd_size = lay.image("multi", [7000, 10], "amd")
    lay.tag("multi", "latest", lay.index("multi", [(arm, arm_size, "arm64"), (amd, amd_size, "amd64")]))
    lay.blob(b"o" * 9000)  # pushed, never referenced
    gone, _ = lay.image("app/web", [4000], "deleted")  # then the manifest was deleted:
    os.remove(lay.v2 / "repositories/app/web/_manifests/revisions/sha256" / gone.split(":")[1] / "link")
    lay.upload("app/web", "11111111-1111-1111-1111-111111111111", "2026-11-01T10:00:00Z")
    lay.upload("multi", "22222222-2222-2222-2222-222222222222", "2026-11-28T11:00:00.123456789Z")
    return lay


def scanned(lay: Layout) -> dict[str, Any]:
    return storage_layout.scan(str(lay.root))


def test_largest_layer_is_found_through_the_index(built: Layout) -> None:
    facts = scanned(built)
    assert facts["repositories"] == 2 and facts["tags"] == 2
    layer = facts["largest_layer"]
    assert (layer["bytes"], layer["repository"], layer["tag"]) == (7000, "multi", "latest")
    assert facts["largest_image"]["bytes"] == 7010
    assert facts["problems"] == []


def test_unreferenced_blobs_are_what_gc_would_free(built: Layout) -> None:
    blobs = scanned(built)["blobs"]
    # the orphan (9000), the deleted manifest, its config and its 4000-byte layer
    assert blobs["unreferenced_count"] == 4
    sizes = sorted(b["bytes"] for b in blobs["unreferenced"])
    assert sizes[-2:] == [4000, 9000]
    assert blobs["unreferenced_bytes"] == sum(sizes)


def test_the_walk_writes_nothing(built: Layout) -> None:
    def snapshot() -> dict[str, tuple[float, int]]:
        return {str(p): (p.stat().st_mtime, p.stat().st_size) for p in built.root.rglob("*")}
    before = snapshot()
    scanned(built)
    assert snapshot() == before


def test_uploads_are_listed(built: Layout) -> None:
    uploads = {u["uuid"]: u for u in scanned(built)["uploads"]}
    assert uploads["11111111-1111-1111-1111-111111111111"]["repository"] == "app/web"
    assert uploads["22222222-2222-2222-2222-222222222222"]["data_bytes"] == 1000


def records(lay: Layout, purging: dict[str, Any] | None) -> dict[str, ProbeRecord]:
    storage: dict[str, Any] = {"filesystem": {"rootdirectory": str(lay.root)}}
    if purging is not None:
        storage["maintenance"] = {"uploadpurging": purging}
    config = {"path": "/etc/docker/registry/config.yml", "config": {"version": 0.1, "storage": storage}}
    return {"config.registry": ProbeRecord("config.registry", "ok", config),
            "storage.layout": ProbeRecord("storage.layout", "ok", scanned(lay))}


def test_stale_upload_fails_with_ids_and_ages(built: Layout) -> None:
    (result,) = judge("registry.stale-uploads", records(built, None))
    assert result.status is Status.FAIL and result.subject == "app/web"
    assert "11111111-1111-1111-1111-111111111111 (650h old)" in result.message
    assert "default" in result.expected  # purging on by default, age 168h


def test_purge_age_in_effect_is_the_configured_one(built: Layout) -> None:
    purging = {"enabled": True, "age": "720h", "interval": "24h", "dryrun": False}
    (result,) = judge("registry.stale-uploads", records(built, purging))
    assert result.status is Status.PASS and "720h" in result.message


def test_purging_off_judges_against_168h(built: Layout) -> None:
    purging = {"enabled": False, "age": "10000h", "interval": "24h", "dryrun": False}
    (result,) = judge("registry.stale-uploads", records(built, purging))
    assert result.status is Status.FAIL and "purging is off" in result.expected


def test_unreadable_startedat_is_a_warning(built: Layout) -> None:
    built.upload("multi", "33333333-3333-3333-3333-333333333333", None)
    results = judge("registry.stale-uploads", records(built, {"enabled": True, "age": "9000h",
                                                              "interval": "24h", "dryrun": False}))
    assert [r.status for r in results] == [Status.WARN]
    assert "33333333" in results[0].message


def test_reclaimable_warns_over_the_threshold(built: Layout) -> None:
    check = load_checks()["storage.reclaimable"]
    ev = Evidence(records(built, None), NOW)
    (low,) = check.judge(ev, {"reclaimable_warn_bytes": 10_000})
    assert low.status is Status.WARN and "run garbage collection" in low.message
    (high,) = check.judge(ev, {"reclaimable_warn_bytes": 1 << 30})
    assert high.status is Status.PASS


def test_usage_against_max_percent(tmp_path: Path) -> None:
    check = load_checks()["storage.usage"]
    fs = {"path": "/srv", "source": "test", "total_bytes": 1000, "used_bytes": 860, "available_bytes": 100,
          "free_bytes": 140}
    ev = Evidence({"storage.filesystem": ProbeRecord("storage.filesystem", "ok", fs)}, NOW)
    (full,) = check.judge(ev, {"max_percent": 85})
    assert full.status is Status.FAIL and "89.6% full" in full.message
    (ok,) = check.judge(ev, {"max_percent": 95})
    assert ok.status is Status.PASS


def test_storage_root_resolution() -> None:
    facts = {"path": "/c.yml", "config": {"storage": {"filesystem": {"rootdirectory": "/srv/reg"}}}}
    assert storage_root(facts, None, None) == {"path": "/srv/reg",
                                               "source": "storage.filesystem.rootdirectory in /c.yml"}
    assert storage_root(facts, None, "/explicit")["source"] == "--storage-root"
    env = {"env_overrides": {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/env"}}
    assert storage_root(facts, env, None)["path"] == "/env"
    container = {"container": {"name": "r"}, "mounts": [{"type": "volume", "source": "/var/lib/docker/volumes/d/_data",
                                                          "destination": "/srv/reg"}]}
    assert storage_root(facts, container, None)["path"] == "/var/lib/docker/volumes/d/_data"
    from auditor.errors import NotApplicable
    with pytest.raises(NotApplicable):
        storage_root({"config": {"storage": {"s3": {"bucket": "b"}}}}, None, None)


def test_judged_at_the_audit_time(built: Layout) -> None:
    early = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    (result,) = judge("registry.stale-uploads", records(built, None), now=early)
    assert result.status is Status.PASS
