"""The on-disk reader: the same content facts as the API walker, from the filesystem driver's layout.

Contract: `StorageReader(root).walk()` reads `<root>/docker/registry/v2/` (FORMATS.md disk
layout): repositories are the directories holding `_manifests`; a tag's digest is
`_manifests/tags/<tag>/current/link`; manifests and blobs are `blobs/sha256/<2>/<hex>/data`,
readable only when the repository links them (`_manifests/revisions/...` for manifests,
`_layers/...` for blobs), as the registry itself serves them. It returns the walker's fact shape
(`source: "storage"`). A root that is empty, or holds the layout but no repository yet (a registry
nothing was pushed to), is an empty registry: no tags, with `empty` saying why. A root that holds
other files but no registry layout raises ProbeError (a wrong root is not an empty registry). No HTTP.
"""

from __future__ import annotations

import os
import time

try:
    import resource
except ImportError:  # not on every platform: the walk then stays in one thread
    resource = None  # type: ignore[assignment]
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from auditor.errors import ProbeError
from auditor.judge import manifests as mf

from .attestations import (
    Step,
    attestation_facts,
    bundle_referrer_facts,
    digest_facts,
    drive,
    legacy_signature_facts,
)
from .offload import can_fork, in_children, usable_cpus

MAX_BLOB = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024  # links and manifests are far smaller; below malloc's memory-mapping threshold
MAX_CHILDREN = 4  # processes sharing a large walk (walk_beside)
WORKERS = 4  # threads for the rest of a walk whose reads go to the disk
MIN_REPOS_PER_WORKER = 16  # repositories per thread's share, and per batch read before deciding
DISK_BLOCKS_PER_READ = 0.5  # 512-byte blocks fetched from the device per file read: above it, the walk waits on I/O
LAYOUT = Path("docker/registry/v2")


class StorageReader(mf.LayerSizes):
    """One read of a registry's storage root."""

    def __init__(self, root: str | Path, signature_repository: str | None = None) -> None:
        """`signature_repository`: cosign's COSIGN_REPOSITORY, where every .sig/.att tag lives."""
        self.root = Path(root)
        self.signature_repository = signature_repository
        self._signature_tags: frozenset[str] | None = None
        self.v2 = self.root / LAYOUT
        self._v2 = str(self.v2)
        self.reads = 0
        mf.LayerSizes.__init__(self)
        self._digest_cache: dict[tuple[str, str], dict[str, Any]] = {}

    # -- files ----------------------------------------------------------------------------
    def _read(self, path: str, limit: int = MAX_BLOB) -> bytes:
        """Read a file of at most `limit` bytes (plain os calls: pathlib costs more than the I/O).
        Each read asks for at most READ_CHUNK bytes: os.read allocates what it is asked for, and a
        request of megabytes for a file of a few hundred bytes (the data, then the end of file) can
        cost a memory mapping and its removal each time."""
        self.reads += 1
        fd = os.open(path, os.O_RDONLY)
        try:
            data = b""
            while True:  # until end of file (os.read may also return short)
                more = os.read(fd, min(limit + 1 - len(data), READ_CHUNK))
                if not more:
                    break
                data += more
                if len(data) > limit:
                    raise ProbeError(f"{path} is larger than {limit} bytes")
        finally:
            os.close(fd)
        return data

    def _link(self, path: str) -> str:
        try:
            value = self._read(path, 1024).decode("ascii", "replace").strip()
        except FileNotFoundError:
            return ""
        return value if mf.DIGEST_RE.match(value) else ""

    def _blob_path(self, digest: str) -> str:
        hexpart = digest.split(":", 1)[1]
        return f"{self._v2}/blobs/sha256/{hexpart[:2]}/{hexpart}/data"

    def _repo_dir(self, repo: str) -> str:
        return f"{self._v2}/repositories/{repo}"

    def manifest(self, repo: str, digest: str) -> tuple[mf.ManifestFacts, bytes]:
        """A manifest the repository links, checked against its digest."""
        hexpart = digest.split(":", 1)[1]
        if not self._link(f"{self._repo_dir(repo)}/_manifests/revisions/sha256/{hexpart}/link"):
            raise ProbeError(f"manifest {digest} is not linked in {repo}")
        try:
            body = self._read(self._blob_path(digest))
        except FileNotFoundError:
            raise ProbeError(f"manifest {digest}: blob data missing from storage") from None
        if mf.digest_of(body) != digest:
            raise ProbeError(f"manifest {digest}: stored bytes do not match the digest")
        return mf.parse_manifest(body), body

    def blob(self, repo: str, digest: str, limit: int = MAX_BLOB) -> bytes:
        hexpart = digest.split(":", 1)[1]
        if not self._link(f"{self._repo_dir(repo)}/_layers/sha256/{hexpart}/link"):
            raise ProbeError(f"blob {digest} is not linked in {repo}")
        try:
            body = self._read(self._blob_path(digest), limit)
        except FileNotFoundError:
            raise ProbeError(f"blob {digest}: data missing from storage") from None
        if mf.digest_of(body) != digest:
            raise ProbeError(f"blob {digest}: stored bytes do not match the digest")
        return body

    def tag_digest(self, repo: str, tag: str) -> str:
        if "/" in tag or tag in (".", ".."):
            return ""
        return self._link(f"{self._repo_dir(repo)}/_manifests/tags/{tag}/current/link")

    # -- walk -----------------------------------------------------------------------------
    def empty_reason(self) -> str | None:
        """Why the root is an empty registry (never written to, or no repository yet), else None.
        ProbeError when the root holds other files but no registry layout."""
        if (self.v2 / "repositories").is_dir():
            return None
        if self.v2.is_dir():
            return f"nothing pushed yet: {self.root} holds {LAYOUT} but no repository"
        try:
            entries = sorted(e for e in os.listdir(self.root) if not e.startswith("."))
        except OSError as exc:
            raise ProbeError(f"cannot list storage root {self.root}: {exc.strerror}") from None
        if not entries or (entries == ["docker"] and not any((self.root / "docker").iterdir())):
            return f"nothing pushed yet: storage root {self.root} was never written to"
        raise ProbeError(f"{self.root} holds no registry storage ({LAYOUT}/repositories is missing; it holds "
                         f"{', '.join(entries[:5])}): is it the registry's storage root?")

    def repositories(self) -> list[str]:
        base = self.v2 / "repositories"
        if not base.is_dir():
            if self.empty_reason():
                return []
            raise ProbeError(f"{self.root} holds no registry storage ({LAYOUT}/repositories is missing)")
        found = []
        for current, dirs, _files in os.walk(base):
            if "_manifests" in dirs:
                found.append(os.path.relpath(current, base).replace(os.sep, "/"))
            dirs[:] = sorted(d for d in dirs if not d.startswith("_"))
        return sorted(found)

    def tags(self, repo: str) -> list[str]:
        try:
            return sorted(os.listdir(f"{self._repo_dir(repo)}/_manifests/tags"))
        except FileNotFoundError:
            return []

    def walk_repositories(self, repos: list[str]) -> list[dict[str, Any]]:
        """Every non-artifact tag's facts of `repos`, in order."""
        results = []
        for repo in repos:
            tags = self.tags(repo)
            tagset = frozenset(tags)
            for tag in tags:
                if not mf.is_artifact_tag(tag):
                    results.append(self.tag_facts(repo, tag, tagset))
        return results

    def walk(self, workers: int = WORKERS, disk_blocks_per_read: float = DISK_BLOCKS_PER_READ) -> dict[str, Any]:
        """The storage's facts, read by this process (see `walk_part` on threads)."""
        started = time.monotonic()
        repos = self.repositories()
        return self._facts(repos, self.walk_part(repos, workers, disk_blocks_per_read), started)

    def walk_beside(self, children: int = 0, timeout: float | None = None) -> dict[str, Any]:
        """`walk()`, its repositories shared among forked children on the other cores when the
        registry is large (`children`: how many; 0: one per usable CPU, at most MAX_CHILDREN). The
        other probes' Python work (the scan directory's reports) then runs beside the walk instead
        of in turn with it, and the walk itself on every core. Consecutive shares, merged in order
        with the sequential tie-breaks: the facts equal `walk()`'s (auditor/content/offload.py).
        `timeout`: seconds after which children still walking are ended (TimeoutError)."""
        started = time.monotonic()
        repos = self.repositories()
        shares = min(children or min(usable_cpus(), MAX_CHILDREN), len(repos) // MIN_REPOS_PER_WORKER)
        if shares < 2 or not can_fork():
            return self._facts(repos, self.walk_part(repos), started)
        size = -(-len(repos) // shares)
        calls = [(str(self.root), self.signature_repository, repos[i:i + size]) for i in range(0, len(repos), size)]
        results: list[dict[str, Any]] = []
        for part in in_children(_walk_part, calls, timeout):
            self._absorb(part)
            results += part["tags"]
        return self._facts(repos, results, started)

    def walk_part(self, repos: list[str], workers: int = WORKERS,
                  disk_blocks_per_read: float = DISK_BLOCKS_PER_READ) -> list[dict[str, Any]]:
        """The tag facts of `repos`, in order. Read in one thread, batch by batch, while the page
        cache answers: parsing is Python work that holds the GIL, and threads contending for it (and
        for it after every file read) cost more than they gain. When a batch's reads fetched more
        than `disk_blocks_per_read` blocks from the device per read (a cold cache, a slow disk), the
        rest is read by up to `workers` threads (waiting reads release the GIL), each with its own
        reader over consecutive repositories; the merge keeps the sequential order and tie-breaks,
        so the facts equal a one-thread walk's either way."""
        results: list[dict[str, Any]] = []
        done = 0
        while done < len(repos):
            batch = repos[done:done + MIN_REPOS_PER_WORKER]
            reads, blocks = self.reads, _blocks_read()
            results += self.walk_repositories(batch)
            done += len(batch)
            rest = repos[done:]
            shares = min(workers, len(rest) // MIN_REPOS_PER_WORKER)
            if shares > 1 and waits_on_disk(self.reads - reads, _blocks_read() - blocks, disk_blocks_per_read):
                results += self._walk_threaded(rest, shares)
                break
        return results

    def _facts(self, repos: list[str], results: list[dict[str, Any]], started: float) -> dict[str, Any]:
        seconds = time.monotonic() - started
        return {
            "source": "storage",
            "registry": str(self.root),
            "repositories": len(repos),
            "tags": results,
            "largest_layer": self.largest,
            "largest_image": self.largest_image,
            "referrers_api": False,
            "auth_scheme": "none",
            **({"empty": self.empty_reason() or f"nothing pushed yet: {self.v2}/repositories holds no repository"}
               if not repos else {}),
            **({"signature_repository": self.signature_repository} if self.signature_repository else {}),
            "stats": {"seconds": round(seconds, 3), "file_reads": self.reads,
                      "reads_per_tag": round(self.reads / len(results), 3) if results else 0.0},
        }

    def _walk_threaded(self, repos: list[str], shares: int) -> list[dict[str, Any]]:
        """`repos` read by `shares` threads, merged as one sequential walk after this reader's."""
        size = -(-len(repos) // shares)
        chunks = [repos[i:i + size] for i in range(0, len(repos), size)]
        readers = [StorageReader(self.root, self.signature_repository) for _ in chunks]
        with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="storage-walk") as pool:
            parts = list(pool.map(StorageReader.walk_repositories, readers, chunks))
        results = []
        for n, reader in enumerate(readers):  # (no zip(strict=...): the gather zipapp runs on Python 3.9)
            self._absorb(reader.part(parts[n]))
            results += parts[n]
        return results

    def part(self, tags: list[dict[str, Any]]) -> dict[str, Any]:
        """What a reader of consecutive repositories hands to the one that merges it."""
        return {"tags": tags, "reads": self.reads, "largest": self.largest, "largest_image": self.largest_image}

    def _absorb(self, part: dict[str, Any]) -> None:
        """Merge a later share's counts and largest layer/image: the first strictly larger wins, as in one pass."""
        self.reads += part["reads"]
        if part["largest"] and (self.largest is None or part["largest"]["size"] > self.largest["size"]):
            self.largest = part["largest"]
        if part["largest_image"] and (self.largest_image is None
                                      or part["largest_image"]["size"] > self.largest_image["size"]):
            self.largest_image = part["largest_image"]

    def tag_facts(self, repo: str, tag: str, tagset: frozenset[str]) -> dict[str, Any]:
        facts: dict[str, Any] = {"repo": repo, "tag": tag}
        digest = self.tag_digest(repo, tag)
        if not digest:
            facts["error"] = "tag has no current/link (deleted or corrupt tag)"
            return facts
        facts["digest"] = digest
        try:
            manifest, _ = self.manifest(repo, digest)
        except (ProbeError, ValueError, OSError) as exc:
            facts["error"] = str(exc)
            return facts
        facts["media_type"] = manifest.media_type
        key = (repo, digest)
        if key not in self._digest_cache:
            self._digest_cache[key] = self._digest_facts(repo, digest, manifest, tagset)
        facts.update(self._digest_cache[key])
        return facts

    def _digest_facts(self, repo: str, digest: str, manifest: mf.ManifestFacts,
                      tagset: frozenset[str]) -> dict[str, Any]:
        sig_repo, sig_tags = repo, tagset
        if self.signature_repository:
            if self._signature_tags is None:
                self._signature_tags = frozenset(self.tags(self.signature_repository))
            sig_repo, sig_tags = self.signature_repository, self._signature_tags
        return drive(digest_facts(repo, digest, manifest, tagset, sig_repo, sig_tags), self._answer)

    def _answer(self, step: Step) -> Any:
        """Answer one read of the shared digest walk (auditor/content/attestations.py) from the disk."""
        if step.kind == "manifest":
            return self.manifest(*step.args)[0]
        if step.kind == "note_layers":
            return self._note_layers(*step.args)
        if step.kind == "legacy_signature":
            return self.legacy_signature(*step.args)
        if step.kind == "legacy_attestations":
            return self.legacy_attestations(*step.args)
        if step.kind == "tag_manifest":
            return self._tag_manifest(*step.args)
        if step.kind == "blob":
            return self.blob(*step.args)
        if step.kind == "bundle_manifest":
            return self.manifest(*step.args)[0]
        if step.kind == "bundle_blob":
            return self.blob(*step.args)
        return self.bundles(*step.args)

    def _tag_manifest(self, repo: str, tag: str) -> tuple[mf.ManifestFacts, bytes]:
        digest = self.tag_digest(repo, tag)
        if not digest:
            raise ProbeError(f"tag {tag} has no current/link")
        return self.manifest(repo, digest)

    def legacy_signature(self, repo: str, tag: str) -> dict[str, Any]:
        return drive(legacy_signature_facts(repo, tag), self._answer)

    def legacy_attestations(self, repo: str, tag: str) -> list[dict[str, Any]]:
        try:
            manifest, _ = self._tag_manifest(repo, tag)
        except (ProbeError, ValueError, OSError) as exc:
            return [{"scheme": "legacy-att", "tag": tag, "error": str(exc)}]
        out = []
        for layer in mf.attestation_layers(manifest):
            try:
                envelope = self.blob(repo, layer.digest)
                out.append(attestation_facts(envelope.decode("utf-8", "replace"), tag, "legacy-att"))
            except (ProbeError, OSError) as exc:
                out.append({"scheme": "legacy-att", "tag": tag, "error": str(exc)})
        return mf.vuln_attestations(out)

    def bundles(self, repo: str, digest: str, tagset: frozenset[str]) -> list[dict[str, Any]]:
        fallback = mf.artifact_tag(digest, "")
        if fallback not in tagset:
            return []
        try:
            index, _ = self._tag_manifest(repo, fallback)
        except (ProbeError, ValueError, OSError) as exc:
            return [{"scheme": "bundle", "error": f"referrers: {exc}"}]
        return drive(bundle_referrer_facts(repo, list(index.children), "tag-schema"), self._answer)


def _walk_part(root: str, signature_repository: str | None, repos: list[str]) -> dict[str, Any]:
    """One share of walk_beside, read by a fresh reader (in a child process)."""
    reader = StorageReader(root, signature_repository)
    return reader.part(reader.walk_part(repos))


def waits_on_disk(reads: int, blocks: int, blocks_per_read: float = DISK_BLOCKS_PER_READ) -> bool:
    """Did `reads` file reads wait on the device (`blocks` 512-byte blocks fetched for them)?"""
    return reads > 0 and blocks > blocks_per_read * reads


def _blocks_read() -> int:
    """Blocks this thread has read from block devices (0 where the count is not kept)."""
    who = getattr(resource, "RUSAGE_THREAD", None) if resource else None
    return resource.getrusage(who).ru_inblock if who is not None else 0
