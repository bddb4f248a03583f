"""The registry API walker: every repository and tag, their digests, platforms and signatures.

Contract: `Walker(client, base_url, auth, options).walk()` returns the content facts (shape in
`facts.py`-style docs below) or raises ProbeError when the walk cannot be trusted (a Link that
loops or leaves the registry's origin, a catalog the registry refuses, the deadline).
Per single-platform tag it sends at most: the manifest GET, the signature manifest GET and one
payload blob GET per signature layer (+1 GET per platform manifest of an index). Signature,
attestation and referrers-fallback tags are found in the repository's own tag list; the OCI
referrers API is probed once and used only when the registry has it. Tags sharing a digest share
the per-digest work. 429 and 5xx are retried with exponential backoff honouring Retry-After.

Facts: {"source": "api", "registry": base_url, "repositories": int, "tags": [tag facts],
"largest_layer": {size, repo, digest} | None, "largest_image": {size (sum of its layers), repo,
digest} | None, "referrers_api": bool, "stats": {...}}; tag facts:
{repo, tag, digest, media_type, platforms: [{digest, platform}], signatures: [...],
attestations: [...], error?}; artifact tags (`sha256-*`) are not listed as tags.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

import httpx

from auditor import bounded
from auditor.errors import ProbeError
from auditor.httpclient import BoundedResponse, safe_url, same_origin
from auditor.judge import manifests as mf

from .attestations import (
    Step,
    attestation_facts,
    bundle_referrer_facts,
    digest_facts,
    drive_async,
    legacy_signature_facts,
)
from .auth import RegistryAuth
from .transport import Fetcher, HttpxFetcher

MAX_MANIFEST = 4 * 1024 * 1024
MAX_PAYLOAD = 4 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class WalkOptions:
    concurrency: int = 24
    listers: int = 4
    page_size: int = 1000
    max_retries: int = 6
    backoff: float = 0.2
    max_backoff: float = 30.0
    max_pages: int = 100_000
    deadline: float | None = None  # event-loop time by which the walk must be done
    referrers: bool = True
    signature_repository: str | None = None  # cosign's COSIGN_REPOSITORY: .sig/.att tags live there
    progress: Callable[[dict[str, int]], None] | None = None


@dataclass
class Stats:
    requests: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    repositories: int = 0
    tags: int = 0

    def count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return {"repositories": self.repositories, "tags": self.tags, "requests": sum(self.requests.values())}


class Walker(mf.LayerSizes):
    """One walk of one registry through its HTTP API."""

    def __init__(self, client: Fetcher | httpx.AsyncClient | Sequence[httpx.AsyncClient], base_url: str,
                 auth: RegistryAuth, options: WalkOptions | None = None) -> None:
        """`client` is a Fetcher (transport.py), or httpx client(s) used round-robin."""
        self.fetcher: Fetcher = (HttpxFetcher(client) if isinstance(client, (httpx.AsyncClient, list, tuple))
                                 else cast(Fetcher, client))
        self.base = base_url.rstrip("/")
        self.auth = auth
        self.options = options or WalkOptions()
        self.stats = Stats()
        mf.LayerSizes.__init__(self)
        self._digest_work: dict[tuple[str, str], asyncio.Task[dict[str, Any]]] = {}
        self._referrers: bool | None = None if self.options.referrers else False
        self._referrers_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._signature_tags: frozenset[str] = frozenset()
        self._last_progress = 0.0

    # -- HTTP -----------------------------------------------------------------------------
    def _remaining(self) -> float:
        if self.options.deadline is None:
            return float("inf")
        return self.options.deadline - asyncio.get_running_loop().time()

    async def request(self, url: str, scope: str, kind: str, *, headers: dict[str, str] | None = None,
                      method: str = "GET", max_body: int = MAX_MANIFEST) -> BoundedResponse:
        """One request with auth, retries on 429/5xx/network errors, counted under `kind`."""
        attempt = 0
        reauth = False
        while True:
            sent = dict(headers or {})
            auth_headers = await self.auth.headers(scope)
            sent.update(auth_headers)
            async with self._slots:
                self.stats.count(kind)
                try:
                    response = await self.fetcher.fetch(method, url, sent, max_body)
                except ProbeError:
                    if attempt >= self.options.max_retries:
                        raise
                    response = None
            if response is not None and response.status_code == 401 and not reauth:
                reauth = True
                if await self.auth.on_challenge(response.headers.get("www-authenticate", ""), scope,
                                                bool(auth_headers)):
                    continue
                return response
            if response is not None and response.status_code not in RETRY_STATUSES:
                return response
            if attempt >= self.options.max_retries:
                assert response is not None
                return response
            delay = self._delay(attempt, response)
            if delay > self._remaining():
                status = response.status_code if response is not None else "network error"
                raise ProbeError(f"{_path(url)}: {status}; retry in {delay:.0f}s would pass the audit deadline")
            self.stats.retries += 1
            attempt += 1
            await asyncio.sleep(delay)

    def _delay(self, attempt: int, response: BoundedResponse | None) -> float:
        backoff = min(self.options.max_backoff, self.options.backoff * (2 ** attempt))
        backoff *= 0.5 + random.random() / 2
        if response is None:
            return backoff
        retry_after = response.headers.get("retry-after")
        if retry_after:
            seconds = _retry_after(retry_after)
            if seconds is not None:
                return max(seconds, 0.0)
        return backoff

    # -- paging ---------------------------------------------------------------------------
    async def pages(self, path: str, query: dict[str, Any], key: str, scope: str,
                    kind: str) -> AsyncIterator[list[str]]:
        """Yield the `key` list of each page, following Link rel=next safely."""
        url = f"{self.base}{path}?{urlencode(query)}"
        seen: set[str] = set()
        for _ in range(self.options.max_pages):
            seen.add(url)
            response = await self.request(url, scope, kind)
            if response.status_code == 404 and kind == "tags":
                return
            if response.status_code != 200:
                raise ProbeError(f"{path}: HTTP {response.status_code}{_auth_hint(response.status_code)}")
            try:
                body = bounded.load_json(response.body, path)
                items = body.get(key) or []
            except (ValueError, AttributeError):
                raise ProbeError(f"{path}: answer is not the expected JSON") from None
            if not isinstance(items, list):
                raise ProbeError(f"{path}: {key} is not a list")
            yield [str(i) for i in items]
            link = _next_link(response.headers.get_list("link"))
            if not link:
                return
            nxt = str(httpx.URL(url).join(link))
            if not same_origin(nxt, self.base) or urlsplit(nxt).path != urlsplit(url).path:
                raise ProbeError(f"{path}: Link header points off the registry ({safe_url(nxt)}): refused")
            if nxt in seen:
                raise ProbeError(f"{path}: Link header loops back to an earlier page ({safe_url(nxt)})")
            url = nxt
        raise ProbeError(f"{path}: more than {self.options.max_pages} pages")

    # -- walk -----------------------------------------------------------------------------
    async def walk(self) -> dict[str, Any]:
        started = time.monotonic()
        repos: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)
        jobs: asyncio.Queue[tuple[str, str, frozenset[str]] | None] = asyncio.Queue(maxsize=1024)
        results: list[dict[str, Any]] = []

        async def catalog() -> None:
            async for page in self.pages("/v2/_catalog", {"n": self.options.page_size}, "repositories",
                                         "registry:catalog:*", "catalog"):
                for name in page:
                    self.stats.repositories += 1
                    if not mf.is_repository_name(name):  # never into a request path; judged as an error
                        results.append({"repo": str(name), "tag": "*",
                                        "error": "the catalog lists a name that is not a valid repository name: "
                                                 "not requested"})
                        continue
                    await repos.put(name)

        async def lister() -> None:
            while (repo := await repos.get()) is not None:
                tags: list[str] = []
                try:
                    async for page in self.pages(f"/v2/{repo}/tags/list", {"n": self.options.page_size}, "tags",
                                                 _scope(repo), "tags"):
                        tags.extend(page)
                except ProbeError as exc:  # one repository's tag list: an error on that repository only
                    results.append({"repo": repo, "tag": "*", "error": f"tag list: {exc}"})
                    continue
                tagset = frozenset(t for t in tags if mf.is_tag_name(t))
                for tag in sorted(set(map(str, tags)) - tagset):
                    results.append({"repo": repo, "tag": tag,
                                    "error": "the tag list holds a name that is not a valid tag: not requested"})
                for tag in sorted(tagset):
                    if not mf.is_artifact_tag(tag):
                        await jobs.put((repo, tag, tagset))

        async def worker() -> None:
            while (job := await jobs.get()) is not None:
                results.append(await self.tag_facts(*job))
                self.stats.tags += 1
                self._progress()

        listers = [asyncio.create_task(lister()) for _ in range(self.options.listers)]
        workers = [asyncio.create_task(worker()) for _ in range(self.options.concurrency)]
        try:
            await self._list_signature_repository()
            await catalog()
            for _ in listers:
                await repos.put(None)
            await asyncio.gather(*listers)
            for _ in workers:
                await jobs.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in (*listers, *workers):
                task.cancel()
            await asyncio.gather(*listers, *workers, return_exceptions=True)
            for digest_task in self._digest_work.values():
                digest_task.cancel()
        results.sort(key=lambda t: (t["repo"], t["tag"]))
        seconds = time.monotonic() - started
        image_requests = sum(v for k, v in self.stats.requests.items() if k not in ("catalog", "tags"))
        return {
            "source": "api",
            "registry": self.base,
            "repositories": self.stats.repositories,
            "tags": results,
            "largest_layer": self.largest,
            "largest_image": self.largest_image,
            "referrers_api": bool(self._referrers),
            "auth_scheme": self.auth.scheme or "none",
            **({"signature_repository": self.options.signature_repository}
               if self.options.signature_repository else {}),
            "stats": {
                "seconds": round(seconds, 3),
                "requests": dict(sorted(self.stats.requests.items())),
                "token_requests": self.auth.token_requests,
                "retries": self.stats.retries,
                "transport": self.fetcher.describe(),
                "requests_per_tag": round(image_requests / len(results), 3) if results else 0.0,
            },
        }

    def _progress(self) -> None:
        now = time.monotonic()
        if self.options.progress and now - self._last_progress >= 1.0:
            self._last_progress = now
            self.options.progress(self.stats.snapshot())

    # -- per tag --------------------------------------------------------------------------
    async def tag_facts(self, repo: str, tag: str, tagset: frozenset[str]) -> dict[str, Any]:
        facts: dict[str, Any] = {"repo": repo, "tag": tag}
        try:
            url = f"{self.base}/v2/{repo}/manifests/{quote(tag, safe='')}"
            response = await self.request(url, _scope(repo), "manifest", headers={"Accept": mf.ACCEPT})
            if response.status_code != 200:
                facts["error"] = f"manifest GET answered HTTP {response.status_code}"
                return facts
            digest, manifest = _checked_manifest(response)
            facts["digest"] = digest
            facts["media_type"] = manifest.media_type
            key = (repo, digest)
            task = self._digest_work.get(key)
            if task is None:
                task = asyncio.create_task(self._digest_facts(repo, digest, manifest, tagset))
                self._digest_work[key] = task
            facts.update(await asyncio.shield(task))
        except (ProbeError, ValueError) as exc:
            facts["error"] = str(exc)
        except Exception as exc:  # a malformed answer must not end the whole walk
            facts["error"] = f"{type(exc).__name__}: {exc}"
        return facts

    async def _digest_facts(self, repo: str, digest: str, manifest: mf.ManifestFacts,
                            tagset: frozenset[str]) -> dict[str, Any]:
        sig_repo = self.options.signature_repository or repo
        sig_tags = self._signature_tags if self.options.signature_repository else tagset
        return await drive_async(digest_facts(repo, digest, manifest, tagset, sig_repo, sig_tags), self._answer)

    async def _answer(self, step: Step) -> Any:
        """Answer one read of the shared digest walk (auditor/content/attestations.py) through the API."""
        if step.kind == "manifest":
            repo, reference = step.args
            return await self.manifest_by_digest(repo, reference, "platform")
        if step.kind == "note_layers":
            return self._note_layers(*step.args)
        if step.kind == "legacy_signature":
            return await self.legacy_signature(*step.args)
        if step.kind == "legacy_attestations":
            return await self.legacy_attestations(*step.args)
        if step.kind == "tag_manifest":
            repo, tag = step.args
            return await self.manifest_raw(repo, tag, "signature")
        if step.kind == "blob":
            repo, digest, limit = step.args
            return await self.blob(repo, digest, "payload", max_body=limit)
        if step.kind == "bundle_manifest":
            repo, digest = step.args
            return await self.manifest_by_digest(repo, digest, "bundle-manifest")
        if step.kind == "bundle_blob":
            repo, digest = step.args
            return await self.blob(repo, digest, "bundle", max_body=MAX_PAYLOAD)
        return await self.bundles(*step.args)

    async def _list_signature_repository(self) -> None:
        """The tags of the COSIGN_REPOSITORY, once: where every image's .sig/.att tags are."""
        name = self.options.signature_repository
        if not name:
            return
        tags: list[str] = []
        async for page in self.pages(f"/v2/{name}/tags/list", {"n": self.options.page_size}, "tags",
                                     _scope(name), "tags"):
            tags.extend(page)
        self._signature_tags = frozenset(tags)

    async def manifest_by_digest(self, repo: str, digest: str, kind: str) -> mf.ManifestFacts:
        facts, _ = await self.manifest_raw(repo, digest, kind)
        return facts

    async def manifest_raw(self, repo: str, reference: str, kind: str) -> tuple[mf.ManifestFacts, bytes]:
        url = f"{self.base}/v2/{repo}/manifests/{quote(reference, safe=':')}"
        response = await self.request(url, _scope(repo), kind, headers={"Accept": mf.ACCEPT})
        if response.status_code != 200:
            raise ProbeError(f"manifest {reference[:80]} answered HTTP {response.status_code}")
        digest, facts = _checked_manifest(response)
        if reference.startswith("sha256:") and digest != reference:
            raise ProbeError(f"manifest {reference} has digest {digest}: content does not match its name")
        return facts, response.body

    async def blob(self, repo: str, digest: str, kind: str, max_body: int = MAX_PAYLOAD) -> bytes:
        url = f"{self.base}/v2/{repo}/blobs/{digest}"
        response = await self.request(url, _scope(repo), kind, max_body=max_body)
        hops = 0
        while response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers and hops < 3:
            hops += 1
            nxt = str(httpx.URL(response.url).join(response.headers["location"]))
            if same_origin(nxt, self.base):
                response = await self.request(nxt, _scope(repo), kind, max_body=max_body)
            else:  # storage backend redirect (S3...): no registry credentials
                self.stats.count(kind)
                response = await self.fetcher.fetch("GET", nxt, {}, max_body)
        if response.status_code != 200:
            raise ProbeError(f"blob {digest} answered HTTP {response.status_code}")
        if response.truncated:
            raise ProbeError(f"blob {digest} is larger than {max_body} bytes")
        if mf.digest_of(response.body) != digest:
            raise ProbeError(f"blob {digest}: content does not match its digest")
        return response.body

    async def legacy_signature(self, repo: str, tag: str) -> dict[str, Any]:
        """The `.sig` image: each simple-signing layer with its payload and annotations."""
        return await drive_async(legacy_signature_facts(repo, tag), self._answer)

    async def legacy_attestations(self, repo: str, tag: str) -> list[dict[str, Any]]:
        """DSSE envelopes in the `.att` image (vuln attestations are kept, others summarised)."""
        try:
            manifest, _ = await self.manifest_raw(repo, tag, "attestation")
        except (ProbeError, ValueError) as exc:
            return [{"scheme": "legacy-att", "tag": tag, "error": str(exc)}]
        out = []
        for layer in mf.attestation_layers(manifest):
            try:
                envelope = await self.blob(repo, layer.digest, "attestation", max_body=MAX_PAYLOAD)
                out.append(attestation_facts(envelope.decode("utf-8", "replace"), tag, "legacy-att"))
            except ProbeError as exc:
                out.append({"scheme": "legacy-att", "tag": tag, "error": str(exc)})
        return mf.vuln_attestations(out)

    async def _referrers_supported(self, repo: str, digest: str) -> list[mf.Descriptor] | None:
        """The referrers of `digest` via the API, or None when the registry has no referrers API."""
        if self._referrers is False:
            return None
        url = f"{self.base}/v2/{repo}/referrers/{digest}"
        if self._referrers is None:
            async with self._referrers_lock:
                if self._referrers is None:
                    response = await self.request(url, _scope(repo), "referrers", headers={"Accept": mf.OCI_INDEX})
                    ctype = response.headers.get("content-type", "").split(";")[0].strip()
                    self._referrers = response.status_code == 200 and ctype == mf.OCI_INDEX
                    if not self._referrers:
                        return None
                    return mf.parse_manifest(response.body, ctype).children
        if not self._referrers:
            return None
        response = await self.request(url, _scope(repo), "referrers", headers={"Accept": mf.OCI_INDEX})
        if response.status_code != 200:
            raise ProbeError(f"referrers of {digest} answered HTTP {response.status_code}")
        return mf.parse_manifest(response.body, mf.OCI_INDEX).children

    async def bundles(self, repo: str, digest: str, tagset: frozenset[str]) -> list[dict[str, Any]]:
        """Sigstore bundle referrers: the referrers API when present, else the `sha256-<hex>` tag."""
        try:
            entries = await self._referrers_supported(repo, digest)
            via = "referrers-api"
            if entries is None:
                fallback = mf.artifact_tag(digest, "")
                if fallback not in tagset:
                    return []
                index = await self.manifest_by_digest(repo, fallback, "referrers-index")
                entries, via = index.children, "tag-schema"
        except (ProbeError, ValueError) as exc:
            return [{"scheme": "bundle", "error": f"referrers: {exc}"}]
        return await drive_async(bundle_referrer_facts(repo, list(entries), via), self._answer)


def _checked_manifest(response: BoundedResponse) -> tuple[str, mf.ManifestFacts]:
    if response.truncated:
        raise ProbeError(f"manifest larger than {MAX_MANIFEST} bytes")
    digest = mf.digest_of(response.body)
    header = response.headers.get("docker-content-digest")
    if header and header != digest:
        raise ProbeError(f"Docker-Content-Digest {header} does not match the manifest bytes ({digest})")
    return digest, mf.parse_manifest(response.body, response.headers.get("content-type", ""))


def _scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def _next_link(values: list[str]) -> str:
    for value in values:
        for part in value.split(","):
            target, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return target.strip().strip("<>")
    return ""


def _retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _path(url: str) -> str:
    return urlsplit(url).path


def _auth_hint(status: int) -> str:
    if status == 401:
        return " (authentication failed: wrong or missing credentials)"
    if status == 403:
        return " (access denied for this user)"
    return ""


def stderr_progress(snapshot: dict[str, int]) -> None:
    """A one-line progress display on a terminal (nothing when stderr is not a TTY)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\rcontent walk: {snapshot['repositories']} repositories, {snapshot['tags']} tags, "
                         f"{snapshot['requests']} requests ")
        sys.stderr.flush()
