"""The lab's images are real: tar layers whose diff_ids are right, and Trivy reports in trivy's shape.

The Trivy checks compare with the real `trivy image --format json` output kept in
tests/fixtures/upstream/trivy (alpine-310.json.golden, trivy's own integration golden).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `lab` package

from lab.content import oci, plan, trivy
from lab.content.populate import LayerCache, build_image

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "trivy" / "alpine-310.json.golden"


def _members(blob: oci.Blob) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_tar_layer_digests() -> None:
    layer = oci.tar_layer({"etc/a/b.txt": b"hello"}, oci.OCI_LAYER)
    raw = gzip.decompress(layer.data)
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer.digest == "sha256:" + hashlib.sha256(layer.data).hexdigest()
    assert layer.raw_size == len(raw)
    assert _members(layer) == {"etc/a/b.txt": b"hello"}


def test_streamed_layer_is_a_valid_incompressible_tar(tmp_path: Path) -> None:
    size = 3 * 1024 * 1024 + 17
    layer = oci.seeded_file_layer("models/w.bin", size, "seed", oci.OCI_LAYER, tmp_path / "w")
    raw = gzip.decompress(layer.data)
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer.digest == "sha256:" + hashlib.sha256(layer.data).hexdigest()
    content = _members(layer)["models/w.bin"]
    assert len(content) == size
    assert layer.size > size            # gzip could not shrink it
    again = oci.seeded_file_layer("models/w.bin", size, "seed", oci.OCI_LAYER, tmp_path / "w2")
    assert again.digest == layer.digest  # reproducible


@pytest.mark.parametrize("spec", [s for s in plan.plan("weak") if not s.big_layer and not s.same_as])
def test_images_have_matching_diff_ids(spec: plan.TagSpec) -> None:
    image = build_image(spec, LayerCache(None))
    config = json.loads(image.config.data)
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
    manifest = json.loads(image.manifest.data)
    assert manifest["config"]["digest"] == image.config.digest
    assert [d["digest"] for d in manifest["layers"]] == [layer.digest for layer in image.layers]
    want = oci.OCI_MANIFEST if spec.oci else oci.DOCKER_MANIFEST
    assert manifest["mediaType"] == want
    for layer in image.layers:
        assert gzip.decompress(layer.data)  # every layer is a real gzip stream


def test_trivy_report_has_the_goldens_shape(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    image = build_image(plan.HARDENED[0], LayerCache(None))
    now = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
    body = trivy.report(hostname="registry.regaudit.test", repo="myapp/backend", tag="v1.0.0",
                        repo_digest=image.manifest.digest, image=image, created_at=now,
                        severities=["LOW", "CRITICAL"])
    assert list(body) == list(golden)
    golden_meta = [k for k in golden["Metadata"] if k != "Reference"]
    assert [k for k in body["Metadata"] if k not in ("RepoDigests", "Reference")] == golden_meta
    vuln_keys = set(golden["Results"][0]["Vulnerabilities"][0]) - {"VendorSeverity", "CweIDs", "References",
                                                                    "Fingerprint"}
    assert vuln_keys <= set(body["Results"][0]["Vulnerabilities"][0])
    assert body["CreatedAt"] == "2026-11-28T12:00:00.123456Z"
    assert body["ReportID"][14] == "7"   # UUIDv7
    assert body["Metadata"]["RepoDigests"] == [f"registry.regaudit.test/myapp/backend@{image.manifest.digest}"]
    assert [v["Severity"] for v in body["Results"][0]["Vulnerabilities"]] == ["LOW", "CRITICAL"]
    stale = now - timedelta(days=10)
    path = trivy.write(tmp_path, "myapp/backend", "v1.0.0", body, stale)
    assert path.name == "myapp_backend_v1.0.0.json"
    assert abs(path.stat().st_mtime - stale.timestamp()) < 1
    assert json.loads(path.read_text()) == body
