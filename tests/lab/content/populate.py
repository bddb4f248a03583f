"""Push the lab's content into a running registry, sign it, scan it, and record it.

Contract: `populate(lab)` builds the images of `plan(lab.content_profile)` (real gzipped tar
layers, deterministic bytes so digests are stable across runs), pushes them through the
registry HTTP API V2 at lab.json registry.listen (token flow in the token variant), signs them
as cosign does (legacy `.sig` tags and cosign 3 bundles in the referrers tag schema), writes
Trivy reports into scan_dir and writes `<base_dir>/content.json` (schema in SPEC.md). Running it
again converges to the same tags and digests (signatures are re-made: ECDSA is randomised).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from . import cosign, credentials, oci, trivy
from .labconf import LabConfig
from .plan import (
    BUNDLE,
    BUNDLE_ANNOTATED,
    LEGACY,
    NONE,
    OLD_DIGEST,
    STALE,
    UNSIGNED,
    UNTRUSTED,
    WRONG_DIGEST,
    TagSpec,
    plan,
)
from .registry import Registry

BIG_LAYER_SIZE = 150 * 1024 * 1024
SCHEMA = "regaudit-lab-content/1"
IMAGE_CREATED = "2026-11-01T00:00:00Z"


def seeded_bytes(seed: str, size: int) -> bytes:
    """Incompressible but reproducible bytes (stable digests from run to run)."""
    return random.Random(seed).randbytes(size)


class LayerCache:
    """Builds each layer once per run (the 150 MiB one is also cached on disk)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self._layers: dict[str, oci.Blob] = {}

    def get(self, key: str, files: dict[str, bytes] | None, media_type: str, *,
            big: bool = False) -> oci.Blob:
        cache_key = f"{key}|{media_type}"
        if cache_key in self._layers:
            return self._layers[cache_key]
        blob = self._load_disk(cache_key) if big else None
        if blob is None:
            path = self._disk(cache_key) if big else None
            if path is not None:
                blob = oci.seeded_file_layer("models/weights.bin", BIG_LAYER_SIZE, key, media_type, path)
                self._store_meta(path, blob)
            else:
                if files is None:
                    files = {"models/weights.bin": seeded_bytes(key, BIG_LAYER_SIZE)}
                blob = oci.tar_layer(files, media_type, compresslevel=1 if big else 6)
        self._layers[cache_key] = blob
        return blob

    def _disk(self, cache_key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        name = oci.sha256_digest(cache_key.encode()).split(":")[1][:24]
        return self.cache_dir / f"layer-{name}"

    def _load_disk(self, cache_key: str) -> oci.Blob | None:
        path = self._disk(cache_key)
        if path is None or not path.exists() or not path.with_suffix(".json").exists():
            return None
        meta = json.loads(path.with_suffix(".json").read_text())
        data = path.read_bytes()
        blob = oci.Blob(data, meta["media_type"], diff_id=meta["diff_id"], raw_size=meta["raw_size"])
        return blob if blob.digest == meta["digest"] else None

    @staticmethod
    def _store_meta(path: Path, blob: oci.Blob) -> None:
        path.with_suffix(".json").write_text(json.dumps({
            "media_type": blob.media_type, "diff_id": blob.diff_id, "raw_size": blob.raw_size,
            "digest": blob.digest}))


def build_image(spec: TagSpec, layers: LayerCache, arch: str = "amd64",
                build: str = "") -> oci.Image:
    """The image for `spec` on `arch`; `build` varies it (the re-pushed tag's old build)."""
    layer_type = oci.OCI_LAYER if spec.oci else oci.DOCKER_LAYER
    base = layers.get(f"base-{arch}", {
        "etc/os-release": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n',
        "bin/busybox": seeded_bytes(f"busybox-{arch}", 256 * 1024),
    }, layer_type)
    app = layers.get(f"app-{spec.repo}-{arch}", {
        f"opt/{spec.repo}/lib.bin": seeded_bytes(f"app-{spec.repo}-{arch}", 64 * 1024),
    }, layer_type)
    version = layers.get(f"ver-{spec.ref}-{arch}-{build}", {
        f"opt/{spec.repo}/VERSION": f"{spec.ref} {arch} {build}\n".encode(),
    }, layer_type)
    stack = [base, app]
    if spec.big_layer:
        stack.append(layers.get(f"weights-{spec.repo}", None, layer_type, big=True))
    stack.append(version)
    labels = {"org.opencontainers.image.version": spec.tag,
              "org.opencontainers.image.title": spec.repo}
    if build:
        labels["regaudit.lab.build"] = build
    return oci.build_image(stack, oci=spec.oci, architecture=arch, created=IMAGE_CREATED,
                           labels=labels, variant="v8" if arch == "arm64" else "")


@dataclass
class Pushed:
    """What one tag ended up as."""

    spec: TagSpec
    subject: oci.Blob                      # the manifest the tag points to (image or index)
    image: oci.Image                       # the image scanned (amd64 child for an index)
    children: list[oci.Image] = field(default_factory=list)
    previous: tuple[oci.Blob, oci.Image] | None = None   # re-pushed tag: the old build
    signature: dict[str, Any] | None = None
    scan: dict[str, Any] | None = None

    @property
    def largest_layer(self) -> int:
        images = self.children or [self.image]
        return max(img.largest_layer for img in images)


async def push_image(reg: Registry, repo: str, image: oci.Image, reference: str) -> None:
    for blob in image.blobs:
        await reg.push_blob(repo, blob)
    await reg.put_manifest(repo, reference, image.manifest)


async def push_tag(reg: Registry, spec: TagSpec, layers: LayerCache,
                   done: dict[str, Pushed]) -> Pushed:
    """Push one tag (children first for an index); returns what the tag points to."""
    if spec.same_as:
        src = done[f"{spec.repo}:{spec.same_as}"]
        await reg.put_manifest(spec.repo, spec.tag, src.subject)
        return Pushed(spec, src.subject, src.image, src.children)
    if spec.multi_platform:
        children = [await asyncio.to_thread(build_image, spec, layers, arch) for arch in spec.platforms]
        for child in children:
            await push_image(reg, spec.repo, child, child.manifest.digest)
        index = oci.image_index([(c.manifest, {"architecture": a, "os": "linux",
                                      "variant": "v8" if a == "arm64" else ""})
                                 for c, a in zip(children, spec.platforms, strict=True)])
        await reg.put_manifest(spec.repo, spec.tag, index)
        return Pushed(spec, index, children[0], children)
    previous = None
    if spec.scan == OLD_DIGEST:
        old = await asyncio.to_thread(build_image, spec, layers, "amd64", "previous-build")
        await push_image(reg, spec.repo, old, spec.tag)
        previous = (old.manifest, old)
    image = await asyncio.to_thread(build_image, spec, layers)
    await push_image(reg, spec.repo, image, spec.tag)
    return Pushed(spec, image.manifest, image, previous=previous)


async def sign_tag(reg: Registry, pushed: Pushed, keys: dict[str, ec.EllipticCurvePrivateKey],
                   hostname: str, done: dict[str, Pushed], signed: dict[str, dict[str, Any]]) -> None:
    """Attach the signature the spec asks for; a digest already signed is not signed twice."""
    spec = pushed.spec
    if spec.sign == UNSIGNED:
        pushed.signature = None
        return
    key_id = f"{spec.repo}@{pushed.subject.digest}"
    if key_id in signed:
        pushed.signature = signed[key_id]
        return
    reference = f"{hostname}/{spec.repo}"
    if spec.sign in (BUNDLE, BUNDLE_ANNOTATED):
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        b = cosign.bundle_signature(keys["trusted"], pushed.subject, created,
                                    index_annotations=spec.sign == BUNDLE_ANNOTATED)
        for blob in (b.config, b.bundle):
            await reg.push_blob(spec.repo, blob)
        await reg.put_manifest(spec.repo, b.manifest.digest, b.manifest)
        if await reg.referrers_supported(spec.repo, pushed.subject.digest):
            fallback = None
        else:
            await reg.put_manifest(spec.repo, b.fallback_tag, b.fallback_index)
            fallback = b.fallback_tag
        record = {"scheme": "sigstore-bundle", "key": "trusted", "tag": fallback,
                  "fallback_index_digest": b.fallback_index.digest if fallback else None,
                  "index_entry_annotations": spec.sign == BUNDLE_ANNOTATED,
                  "manifest_digest": b.manifest.digest, "bundle_digest": b.bundle.digest,
                  "signed_digest": b.signed_digest, "predicate_type": cosign.SIGN_PREDICATE_TYPE}
    else:
        key_name = "untrusted" if spec.sign == UNTRUSTED else "trusted"
        payload_digest = None
        if spec.sign == WRONG_DIGEST:
            payload_digest = done[f"{spec.repo}:{spec.replay_from}"].subject.digest
        sig = cosign.legacy_signature(keys[key_name], reference, pushed.subject.digest,
                                      payload_digest=payload_digest)
        for blob in (sig.payload, sig.config):
            await reg.push_blob(spec.repo, blob)
        await reg.put_manifest(spec.repo, sig.tag, sig.manifest)
        record = {"scheme": "legacy-tag", "key": key_name, "tag": sig.tag,
                  "manifest_digest": sig.manifest.digest, "payload_digest": sig.payload.digest,
                  "signed_digest": sig.signed_digest, "docker_reference": reference}
    if spec.sign in (LEGACY, BUNDLE, BUNDLE_ANNOTATED):
        signed[key_id] = record
    pushed.signature = record


def write_scan(pushed: Pushed, hostname: str, scan_dir: Path, now: datetime) -> None:
    spec = pushed.spec
    if spec.scan == NONE:
        pushed.scan = None
        return
    created = now - timedelta(days=10) if spec.scan == STALE else now
    digest, image = pushed.subject.digest, pushed.image
    if spec.scan == OLD_DIGEST and pushed.previous is not None:
        digest, image = pushed.previous[0].digest, pushed.previous[1]
    body = trivy.report(hostname=hostname, repo=spec.repo, tag=spec.tag, repo_digest=digest,
                        image=image, created_at=created, severities=list(spec.severities))
    path = trivy.write(scan_dir, spec.repo, spec.tag, body, created)
    counts = {s: list(spec.severities).count(s) for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")}
    pushed.scan = {"path": str(path), "created_at": body["CreatedAt"], "repo_digest": digest,
                   "image_id": image.config.digest, "severity_counts": counts}


def load_keys(lab: LabConfig) -> dict[str, ec.EllipticCurvePrivateKey]:
    """The trusted and untrusted signing keys; generated when lab.json's paths do not exist."""
    pairs = {"trusted": (lab.cosign.private_key, lab.cosign.public_key),
             "untrusted": (lab.cosign.untrusted_private_key, lab.cosign.untrusted_public_key)}
    keys = {}
    for name, (priv, pub) in pairs.items():
        if not priv.exists():
            cosign.generate_keypair(priv, pub)
        keys[name] = cosign.load_private_key(priv)
    return keys


def _tag_record(p: Pushed) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "digest": p.subject.digest,
        "media_type": p.subject.media_type,
        "size": p.subject.size,
        "largest_layer": p.largest_layer,
        "children": [{"platform": c.platform, "digest": c.manifest.digest,
                      "media_type": c.manifest.media_type, "size": c.manifest.size}
                     for c in p.children],
        "config_digest": None if p.children else p.image.config.digest,
        "layers": [] if p.children else [{"digest": layer.digest, "size": layer.size,
                                          "diff_id": layer.diff_id} for layer in p.image.layers],
        "signature": p.signature,
        "scan": p.scan,
        "defect": {"id": p.spec.defect_id, "check": p.spec.defect} if p.spec.defect else None,
        "description": p.spec.description,
    }
    if p.previous is not None:
        rec["previous_digest"] = p.previous[0].digest
    return rec


def content_record(lab: LabConfig, url: str, pushed: list[Pushed], started: datetime,
                   seconds: float, requests: int, uploads: dict[str, int]) -> dict[str, Any]:
    """The content.json document (see SPEC.md)."""
    repos: dict[str, dict[str, Any]] = {}
    artifact_tags: dict[str, list[str]] = {}
    for p in pushed:
        repos.setdefault(p.spec.repo, {"tags": {}})["tags"][p.spec.tag] = _tag_record(p)
        sig = p.signature
        if sig and sig.get("tag"):
            tags = artifact_tags.setdefault(p.spec.repo, [])
            if sig["tag"] not in tags:
                tags.append(sig["tag"])
    defects = [{"id": p.spec.defect_id, "check": p.spec.defect, "subject": p.spec.ref,
                "repo": p.spec.repo, "tag": p.spec.tag, "digest": p.subject.digest,
                "detail": p.spec.description} for p in pushed if p.spec.defect]
    largest = max(pushed, key=lambda p: p.largest_layer)
    return {
        "schema": SCHEMA,
        "variant": lab.variant,
        "content_profile": lab.content_profile,
        "registry": url,
        "hostname": lab.hostname,
        "docker_reference_prefix": f"{lab.hostname}/",
        "populated_at": trivy.rfc3339_nano(started),
        "populate_seconds": round(seconds, 3),
        "requests": requests,
        "blob_uploads": dict(sorted(uploads.items())),
        "scan_dir": str(lab.scan_dir),
        "cosign": {"public_key": str(lab.cosign.public_key),
                   "untrusted_public_key": str(lab.cosign.untrusted_public_key)},
        "repositories": repos,
        "artifact_tags": artifact_tags,
        "largest_layer": {"repo": largest.spec.repo, "tag": largest.spec.tag,
                          "size": largest.largest_layer},
        "defects": defects,
    }


async def populate_async(lab: LabConfig, concurrency: int = 4) -> dict[str, Any]:
    started = datetime.now(UTC)
    t0 = time.monotonic()
    url = lab.registry_url()
    keys = load_keys(lab)
    user, password, verify = credentials.push_credentials(lab)
    layers = LayerCache(lab.base_dir / ".content-cache")
    specs = plan(lab.content_profile)
    done: dict[str, Pushed] = {}
    signed: dict[str, dict[str, Any]] = {}
    by_repo: dict[str, list[TagSpec]] = {}
    for spec in specs:
        by_repo.setdefault(spec.repo, []).append(spec)
    sem = asyncio.Semaphore(concurrency)
    async with Registry(url, username=user, password=password, token_verify=verify) as reg:
        async def one_repo(repo_specs: list[TagSpec]) -> None:
            async with sem:
                for spec in repo_specs:   # in order: same_as / replay_from refer to earlier tags
                    done[spec.ref] = await push_tag(reg, spec, layers, done)
                for spec in repo_specs:
                    await sign_tag(reg, done[spec.ref], keys, lab.hostname, done, signed)

        await asyncio.gather(*(one_repo(s) for s in by_repo.values()))
        now = datetime.now(UTC)
        pushed = [done[s.ref] for s in specs]
        for p in pushed:
            write_scan(p, lab.hostname, lab.scan_dir, now)
        record = content_record(lab, url, pushed, started, time.monotonic() - t0, reg.requests,
                                reg.uploads)
    lab.base_dir.mkdir(parents=True, exist_ok=True)
    tmp = lab.content_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, lab.content_json)
    return record


def populate(lab: LabConfig) -> dict[str, Any]:
    """Synchronous entry point."""
    return asyncio.run(populate_async(lab))
