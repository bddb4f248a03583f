"""Build real image content: gzipped tar layers, image configs, manifests and indexes.

Contract: every object is a `Blob` (exact bytes, sha256 digest, size, media type) ready to be
pushed; layers are real tar archives made with `tarfile` and gzipped, and the config's
`rootfs.diff_ids` are the sha256 of each uncompressed tar. Manifests are serialised as
go-containerregistry / the Docker CLI write them (compact Go JSON), so their digests are stable
for given inputs. Docker schema 2 and OCI media types are both supported.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .gojson import GoMap, marshal

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

MANIFEST_TYPES = (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX)
ZERO_TIME = "0001-01-01T00:00:00Z"
STREAM_CHUNK = 4 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """Exact bytes of a blob or manifest with its digest; `diff_id` set for layers."""

    data: bytes
    media_type: str
    digest: str = ""
    diff_id: str = ""
    raw_size: int = 0
    annotations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", sha256_digest(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """A Go v1.Descriptor in field order: mediaType, size, digest, annotations, extras."""
        desc: dict[str, Any] = {"mediaType": self.media_type, "size": self.size, "digest": self.digest}
        if self.annotations:
            desc["annotations"] = GoMap(self.annotations)
        desc.update(extra)
        return desc


def tar_layer(files: dict[str, bytes], media_type: str, mtime: int = 1_700_000_000,
              compresslevel: int = 6) -> Blob:
    """A gzipped tar of `files` (path -> content; parent dirs added), diff_id = sha256(tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = mtime
                    tar.addfile(info)
            content = files[path]
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, compresslevel=compresslevel, mtime=0)
    return Blob(compressed, media_type, diff_id=sha256_digest(uncompressed), raw_size=len(uncompressed))


class _Hashing(io.RawIOBase):
    """A write-through sink that hashes (and counts) what passes to `target` (None: discard)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.count += len(view)
        if self.target is not None:
            self.target.write(view)
        return len(view)


def seeded_file_layer(path: str, size: int, seed: str, media_type: str, out: Path,
                      mtime: int = 1_700_000_000, compresslevel: int = 0) -> Blob:
    """A gzipped tar holding one file of `size` seeded random bytes, streamed through `out`.

    Memory stays at one copy of the compressed layer (read back from `out`), not the three a
    build in memory needs; diff_id is hashed on the way into gzip. The default gzip level 0
    (stored DEFLATE blocks, a valid gzip stream) is used because the data is incompressible:
    any level gives the same size, and level 1 costs ~10x the time on 150 MiB.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        compressed = _Hashing(fh)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
            raw = _Hashing(gz)
            # The tar by hand (header, data, padding, end-of-archive, record padding, as tarfile
            # writes them) so the data goes to gzip in large writes.
            info = tarfile.TarInfo(path)
            info.size = size
            info.mode = 0o644
            info.mtime = mtime
            raw.write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
            rng, left = random.Random(seed), size
            while left:
                n = min(STREAM_CHUNK, left)
                raw.write(rng.randbytes(n))
                left -= n
            raw.write(b"\0" * (-size % tarfile.BLOCKSIZE))
            raw.write(b"\0" * (2 * tarfile.BLOCKSIZE))
            raw.write(b"\0" * (-raw.count % tarfile.RECORDSIZE))
    data = out.read_bytes()
    digest = "sha256:" + compressed.sha.hexdigest()
    return Blob(data, media_type, digest=digest, diff_id="sha256:" + raw.sha.hexdigest(), raw_size=raw.count)


def image_config(layers: list[Blob], media_type: str, *, architecture: str = "amd64",
                 os_name: str = "linux", created: str = "2026-11-01T00:00:00Z",
                 env: list[str] | None = None, cmd: list[str] | None = None,
                 labels: dict[str, str] | None = None, variant: str = "") -> Blob:
    """An image config (Go v1.ConfigFile field order) whose rootfs.diff_ids match `layers`."""
    inner: dict[str, Any] = {
        "Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": cmd or ["/bin/sh"],
    }
    if labels:
        inner["Labels"] = GoMap(labels)
    config: dict[str, Any] = {
        "architecture": architecture,
        "created": created,
        "history": [{"created": created, "created_by": f"regaudit-lab layer {i}"}
                    for i in range(len(layers))],
        "os": os_name,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "config": inner,
    }
    if variant:
        config["variant"] = variant
    return Blob(marshal(config), media_type)


def image_manifest(config: Blob, layers: list[Blob], media_type: str) -> Blob:
    """A schema 2 / OCI image manifest over config and layers."""
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return Blob(marshal(body), media_type)


def image_index(children: list[tuple[Blob, dict[str, str]]], media_type: str = OCI_INDEX) -> Blob:
    """An OCI index / Docker manifest list; children are (manifest, platform) pairs."""
    manifests = []
    for manifest, platform in children:
        plat: dict[str, Any] = {"architecture": platform["architecture"], "os": platform["os"]}
        if platform.get("variant"):
            plat["variant"] = platform["variant"]
        manifests.append(manifest.descriptor(platform=plat))
    body = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return Blob(marshal(body), media_type)


@dataclass
class Image:
    """One pushable image: its blobs (config first, then layers) and its manifest."""

    manifest: Blob
    config: Blob
    layers: list[Blob]
    platform: str = "linux/amd64"

    @property
    def blobs(self) -> list[Blob]:
        return [self.config, *self.layers]

    @property
    def largest_layer(self) -> int:
        return max((layer.size for layer in self.layers), default=0)


@dataclass
class Index:
    """A multi-platform index with its child images."""

    manifest: Blob
    children: list[Image]

    @property
    def largest_layer(self) -> int:
        return max((child.largest_layer for child in self.children), default=0)


def build_image(layers: list[Blob], *, oci: bool, architecture: str = "amd64",
                created: str = "2026-11-01T00:00:00Z", labels: dict[str, str] | None = None,
                variant: str = "") -> Image:
    """Config + manifest over layers, in Docker schema 2 or OCI media types."""
    config = image_config(layers, OCI_CONFIG if oci else DOCKER_CONFIG, architecture=architecture,
                          created=created, labels=labels, variant=variant)
    manifest = image_manifest(config, layers, OCI_MANIFEST if oci else DOCKER_MANIFEST)
    platform = f"linux/{architecture}" + (f"/{variant}" if variant else "")
    return Image(manifest=manifest, config=config, layers=layers, platform=platform)
