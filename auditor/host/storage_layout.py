"""The filesystem storage driver's disk layout, read-only (FORMATS.md, distribution 2.8).

Contract: `scan(rootdirectory)` walks `<root>/docker/registry/v2/` without writing anything and
returns JSON facts: repositories, tags, every tag's manifest with index manifests followed to
their platform manifests (largest layer, largest image), incomplete uploads (`_uploads/<uuid>/
startedat`), and the blobs no manifest revision references (what `registry garbage-collect`
without --delete-untagged would free). Unreadable or malformed entries are listed in `problems`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from auditor.judge.manifests import ManifestFacts, parse_manifest
from auditor.model import JSON

V2 = Path("docker/registry/v2")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_LISTED = 100
MAX_PROBLEMS = 50


def read_link(path: Path) -> str | None:
    """The digest a `link` file holds, or None when missing or malformed."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text if DIGEST.match(text) else None


def blob_data(v2: Path, digest: str) -> Path:
    hexpart = digest.split(":", 1)[1]
    return v2 / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"


def repositories(v2: Path) -> list[str]:
    """Repository names: directories under repositories/ holding _manifests, _layers or _uploads."""
    base = v2 / "repositories"
    found = []
    for dirpath, dirnames, _ in os.walk(base):
        here = set(dirnames)
        if here & {"_manifests", "_layers", "_uploads"}:
            found.append(os.path.relpath(dirpath, base))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("_"))
    return sorted(found)


def tags(v2: Path, repo: str) -> dict[str, str | None]:
    """tag -> digest its current/link names (None when the link is broken)."""
    base = v2 / "repositories" / repo / "_manifests" / "tags"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return {}
    return {name: read_link(base / name / "current" / "link") for name in names}


def revisions(v2: Path, repo: str) -> list[str]:
    """Digests of every manifest revision linked in the repository."""
    base = v2 / "repositories" / repo / "_manifests" / "revisions" / "sha256"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out = []
    for name in names:
        digest = read_link(base / name / "link")
        if digest:
            out.append(digest)
    return out


def uploads(v2: Path, repo: str) -> list[dict[str, JSON]]:
    """Incomplete uploads: uuid, startedat text (RFC 3339; judged by the check), data size."""
    base = v2 / "repositories" / repo / "_uploads"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    out: list[dict[str, JSON]] = []
    for name in names:
        entry: dict[str, JSON] = {"repository": repo, "uuid": name}
        try:
            entry["startedat"] = (base / name / "startedat").read_text(encoding="ascii", errors="replace").strip()
        except OSError as exc:
            entry["startedat"] = None
            entry["startedat_error"] = exc.strerror
        try:
            entry["data_bytes"] = (base / name / "data").stat().st_size
        except OSError:
            entry["data_bytes"] = None
        out.append(entry)
    return out


@dataclass
class _Walk:
    v2: Path
    problems: list[str] = field(default_factory=list)
    cache: dict[str, ManifestFacts | None] = field(default_factory=dict)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def manifest(self, digest: str, where: str) -> ManifestFacts | None:
        if digest in self.cache:
            return self.cache[digest]
        facts = None
        path = blob_data(self.v2, digest)
        try:
            with open(path, "rb") as handle:
                body = handle.read(MAX_MANIFEST_BYTES + 1)
            if len(body) > MAX_MANIFEST_BYTES:
                raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
            facts = parse_manifest(body)
        except OSError as exc:
            self.problem(f"{where}: manifest {digest} unreadable: {exc.strerror}")
        except ValueError as exc:
            self.problem(f"{where}: manifest {digest}: {exc}")
        self.cache[digest] = facts
        return facts

    def images(self, digest: str, where: str, depth: int = 0) -> list[tuple[str, ManifestFacts]]:
        """(digest, image manifest) pairs reachable from `digest` (indexes followed)."""
        facts = self.manifest(digest, where)
        if facts is None:
            return []
        if facts.kind != "index":
            return [(digest, facts)]
        if depth > 3:
            self.problem(f"{where}: index nesting deeper than 3 at {digest}")
            return []
        out = []
        for child in facts.children:
            out += self.images(child.digest, f"{where} -> {child.platform or child.digest}", depth + 1)
        return out


def _all_blobs(v2: Path) -> dict[str, int]:
    """digest -> size of every blob's data file."""
    base = v2 / "blobs" / "sha256"
    out: dict[str, int] = {}
    for dirpath, _, filenames in os.walk(base):
        if "data" in filenames:
            digest = "sha256:" + os.path.basename(dirpath)
            if DIGEST.match(digest):
                try:
                    out[digest] = os.stat(os.path.join(dirpath, "data")).st_size
                except OSError:
                    continue
    return out


def _marked(walk: _Walk, repos: list[str]) -> set[str]:
    """Blobs garbage collection keeps: every revision, its children, config and layers."""
    marked: set[str] = set()
    for repo in repos:
        for digest in revisions(walk.v2, repo):
            marked.add(digest)
            facts = walk.manifest(digest, f"{repo}@{digest}")
            if facts is None:
                continue
            marked.update(child.digest for child in facts.children)
            marked.update(layer.digest for layer in facts.layers)
            if facts.config is not None:
                marked.add(facts.config.digest)
    return marked


def scan(rootdirectory: str) -> dict[str, JSON]:
    """Facts of the layout under `rootdirectory` (see the module contract)."""
    v2 = Path(rootdirectory) / V2
    facts: dict[str, JSON] = {"rootdirectory": rootdirectory, "layout": str(v2), "exists": v2.is_dir()}
    if not v2.is_dir():
        return facts
    walk = _Walk(v2)
    repos = repositories(v2)
    largest_layer: dict[str, JSON] | None = None
    largest_image: dict[str, JSON] | None = None
    tag_count = 0
    for repo in repos:
        for tag, digest in tags(v2, repo).items():
            tag_count += 1
            where = f"{repo}:{tag}"
            if digest is None:
                walk.problem(f"{where}: current/link missing or malformed")
                continue
            for image_digest, image in walk.images(digest, where):
                total = sum(layer.size for layer in image.layers)
                if largest_image is None or total > int(largest_image["bytes"]):
                    largest_image = {"bytes": total, "repository": repo, "tag": tag, "manifest": image_digest}
                for layer in image.layers:
                    if largest_layer is None or layer.size > int(largest_layer["bytes"]):
                        largest_layer = {"bytes": layer.size, "digest": layer.digest, "repository": repo,
                                         "tag": tag, "manifest": image_digest}
    blobs = _all_blobs(v2)
    marked = _marked(walk, repos)
    loose = sorted(((d, s) for d, s in blobs.items() if d not in marked), key=lambda item: -item[1])
    upload_list = [u for repo in repos for u in uploads(v2, repo)]
    facts.update({
        "repositories": len(repos),
        "tags": tag_count,
        "manifests_read": sum(1 for f in walk.cache.values() if f is not None),
        "largest_layer": largest_layer,
        "largest_image": largest_image,
        "uploads": upload_list,
        "blobs": {
            "count": len(blobs),
            "bytes": sum(blobs.values()),
            "unreferenced_count": len(loose),
            "unreferenced_bytes": sum(s for _, s in loose),
            "unreferenced": [{"digest": d, "bytes": s} for d, s in loose[:MAX_LISTED]],
        },
        "problems": walk.problems,
    })
    return facts
