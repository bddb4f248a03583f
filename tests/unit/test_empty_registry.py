"""An empty registry (nothing pushed yet) is a state, not an error: the storage reader gives no tags
with the reason, the content checks `skip` with it, tmpfs.size judges with no layer to size for."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.content.storage import StorageReader
from auditor.errors import ProbeError
from auditor.model import Status

from .helpers import judge, records

CONTENT_CHECKS = ("signatures.present", "signatures.valid", "scans.present", "scans.fresh",
                  "scans.digest-match", "scans.severity")


def _never_written(tmp: Path) -> Path:
    root = tmp / "storage"
    root.mkdir()
    return root


def _layout_no_repository(tmp: Path) -> Path:
    root = tmp / "storage"
    (root / "docker/registry/v2/blobs").mkdir(parents=True)
    return root


def _repositories_dir_empty(tmp: Path) -> Path:
    root = tmp / "storage"
    (root / "docker/registry/v2/repositories").mkdir(parents=True)
    return root


@pytest.mark.parametrize("make", [_never_written, _layout_no_repository, _repositories_dir_empty])
def test_an_empty_storage_root_walks_to_no_tags_with_the_reason(tmp_path, make):
    facts = StorageReader(make(tmp_path)).walk()
    assert facts["tags"] == [] and facts["repositories"] == 0
    assert "nothing pushed yet" in facts["empty"]
    assert facts["largest_layer"] is None


def test_a_root_holding_other_files_is_not_taken_for_an_empty_registry(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / "website").mkdir()
    with pytest.raises(ProbeError, match="is it the registry's storage root"):
        StorageReader(root).walk()


def _empty_evidence(content: dict) -> dict:
    return records(registry__content={**content, "hosts": ["registry.example"]},
                   signatures__trust={"keys": [], "trusted_root_json": None, "errors": []},
                   scans__reports={"path": "/scans", "reports": [], "ignores": {}, "errors": []})


@pytest.mark.parametrize("check_id", CONTENT_CHECKS)
def test_content_checks_skip_on_an_empty_registry_with_the_reason(tmp_path, check_id):
    facts = StorageReader(_never_written(tmp_path)).walk()
    results = judge(check_id, _empty_evidence(facts))
    assert [r.status for r in results] == [Status.SKIP]
    assert "no tags yet" in results[0].message and "never written to" in results[0].message


def test_content_checks_skip_on_an_empty_catalog_through_the_api():
    api = {"source": "api", "registry": "https://registry.example", "repositories": 0, "tags": [],
           "largest_layer": None}
    results = judge("signatures.present", _empty_evidence(api))
    assert [r.status for r in results] == [Status.SKIP]
    assert "no repository yet" in results[0].message


def test_tmpfs_size_with_no_layer_judges_the_mount_alone(tmp_path):
    facts = StorageReader(_never_written(tmp_path)).walk()
    mount = {"mountpoint": "/var/cache/nginx", "fstype": "tmpfs", "flags": ["noexec", "nosuid"],
             "options": "rw,nosuid,noexec", "size_bytes": 512 << 20, "size_option": "512M"}
    tmpfs = {"view": "test", "fstab_path": "/etc/fstab", "fstab_readable": True,
             "paths": [{"directive": "proxy_temp_path", "path": "/var/cache/nginx/proxy", "mount": mount}]}
    layout = {"rootdirectory": str(tmp_path), "exists": False}
    results = judge("tmpfs.size", records(host__tmpfs=tmpfs, storage__layout=layout, registry__content=facts))
    assert [r.status for r in results] == [Status.PASS]
    assert "holds no image yet" in results[0].message
