"""Manifest media types and compact facts from manifest bytes (Docker schema 2 and OCI).

Contract: `parse_manifest(body, content_type)` returns a `ManifestFacts` (kind image / index /
artifact, layers with sizes, child descriptors, artifactType, subject, annotations); it raises
ValueError on bytes that are not a JSON manifest. `digest_of(body)` is the sha256 digest string.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from auditor.judge.parse import load_json

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
REKOR_ANNOTATION = "dev.sigstore.cosign/bundle"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"

MAX_SIGNATURE_PAYLOAD = 256 * 1024  # a simple-signing payload is a few hundred bytes

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SIG_TAG_RE = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)


def is_repository_name(name: object) -> bool:
    """A repository name in distribution's grammar (what a registry may legitimately list); anything
    else (controls, markup, non-ASCII) is never put into a request path."""
    return isinstance(name, str) and len(name) <= 255 and _REPOSITORY.fullmatch(name) is not None


def is_tag_name(tag: object) -> bool:
    """A tag in distribution's grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}."""
    return isinstance(tag, str) and _TAG.fullmatch(tag) is not None


def is_artifact_tag(tag: str) -> bool:
    """Tags cosign writes (`sha256-<hex>.sig/.att/.sbom`, referrers fallback `sha256-<hex>`)."""
    return bool(SIG_TAG_RE.match(tag))


def artifact_tag(digest: str, suffix: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>.<suffix>` (no suffix: the referrers fallback tag)."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}.{suffix}" if suffix else f"{algo}-{hexpart}"


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    platform: str = ""


@dataclass
class ManifestFacts:
    media_type: str
    kind: str  # image | index
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    config: Descriptor | None = None
    artifact_type: str = ""
    subject: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


def _descriptor(raw: Any) -> Descriptor:
    # Called for every layer and child of every manifest walked (40,000 at 10,000 tags): the common
    # case (strings where strings belong, no platform, few annotations) takes no detour.
    if not isinstance(raw, dict):
        raise ValueError("descriptor is not an object")
    digest = raw.get("digest", "")
    if type(digest) is not str:
        digest = str(digest)
    if not DIGEST_RE.match(digest):
        raise ValueError(f"descriptor digest {digest[:80]!r} is not sha256:<64 hex>")
    platform = raw.get("platform")
    plat = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k)) \
        if isinstance(platform, dict) and platform else ""
    annotations = raw.get("annotations")
    size = raw.get("size", 0)
    media_type = raw.get("mediaType", "")
    artifact_type = raw.get("artifactType", "")
    return Descriptor(
        media_type if type(media_type) is str else str(media_type),
        digest,
        int(size) if isinstance(size, int) and size >= 0 else 0,
        {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) and annotations else {},
        artifact_type if type(artifact_type) is str else str(artifact_type),
        plat,
    )


def parse_manifest(body: bytes, content_type: str = "") -> ManifestFacts:
    """Facts of a manifest; the body's own mediaType wins over the Content-Type header."""
    try:
        doc = load_json(body, "manifest")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("manifest is not a JSON object")
    media_type = str(doc.get("mediaType") or content_type.split(";")[0].strip())
    if doc.get("schemaVersion") == 1:
        raise ValueError("Docker schema 1 manifests are not supported (deprecated, unsigned digests)")
    annotations = _obj(doc.get("annotations"))
    subject = doc.get("subject")
    facts = ManifestFacts(
        media_type=media_type,
        kind="index" if media_type in INDEX_TYPES or "manifests" in doc else "image",
        artifact_type=str(doc.get("artifactType", "")),
        subject=str(subject.get("digest", "")) if isinstance(subject, dict) else "",
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
    if facts.kind == "index":
        facts.children = [_descriptor(d) for d in doc.get("manifests") or []]
    else:
        if "config" in doc:
            facts.config = _descriptor(doc["config"])
        facts.layers = [_descriptor(d) for d in doc.get("layers") or []]
    if not facts.artifact_type and facts.config is not None and facts.config.artifact_type:
        facts.artifact_type = facts.config.artifact_type
    return facts


def predicate_of(descriptor: Descriptor | ManifestFacts) -> str:
    """The predicate type a bundle referrer announces (annotations), or ''."""
    return descriptor.annotations.get(PREDICATE_ANNOTATION, "")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class LayerSizes:
    """The largest layer and the largest image (sum of its layers) seen while walking, for tmpfs sizing."""

    def __init__(self) -> None:
        self.largest: dict[str, Any] | None = None
        self.largest_image: dict[str, Any] | None = None

    def _note_layers(self, repo: str, manifest: ManifestFacts, digest: str) -> None:
        for layer in manifest.layers:
            if self.largest is None or layer.size > self.largest["size"]:
                self.largest = {"size": layer.size, "repo": repo, "digest": layer.digest}
        total = sum(layer.size for layer in manifest.layers)
        if self.largest_image is None or total > self.largest_image["size"]:
            self.largest_image = {"size": total, "repo": repo, "digest": digest}


def signature_layers(manifest: ManifestFacts) -> list[Descriptor]:
    """The simple-signing layers of a `.sig` image (one per signature)."""
    return [layer for layer in manifest.layers if layer.media_type == SIMPLESIGNING]


def attestation_layers(manifest: ManifestFacts) -> list[Descriptor]:
    """The DSSE layers of an `.att` image that may be vuln attestations (annotated as one, or not
    annotated: their envelope tells)."""
    return [layer for layer in manifest.layers if layer.media_type == DSSE_ENVELOPE
            and layer.annotations.get("predicateType", "") in ("", VULN_PREDICATE)]


def vuln_attestations(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attestation facts worth keeping: vuln attestations, and the ones that could not be read."""
    return [a for a in found if a.get("error") or a.get("predicate_type") == VULN_PREDICATE]


def artifacts(legacy_signature: dict[str, Any] | None, legacy_attestations: list[dict[str, Any]],
              bundles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A digest's signatures and attestations: the legacy `.sig`/`.att` tags, and the sigstore
    bundles sorted by predicate type (a vuln predicate is an attestation, anything else a signature)."""
    sigs = [legacy_signature] if legacy_signature is not None else []
    atts = list(legacy_attestations)
    for bundle in bundles:
        (atts if bundle.get("predicate_type") == VULN_PREDICATE else sigs).append(bundle)
    return {"signatures": sigs, "attestations": atts}
