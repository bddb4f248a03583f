"""Scale content for benchmarks: N repositories x M tags of small signed, scanned images.

Contract: `scale(lab, repos=N, tags=M, concurrency=C)` pushes `<prefix>/repo-<i>:v<j>` for every
i < N, j < M, concurrently (C tags in flight, one pooled httpx client): each image has the one
shared base layer (mounted across repositories, uploaded once) and a unique config, a legacy
cosign signature by the trusted key, and a fresh Trivy report in scan_dir. It writes
`<base_dir>/scale.json` ({repos, tags, seconds, requests, items: [{repo, tag, digest}]}) and
returns the summary (without items). Image digests are deterministic for given names.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from . import cosign, credentials, oci, trivy
from .labconf import LabConfig
from .populate import load_keys, seeded_bytes
from .registry import Registry, TokenStore


async def _scale(lab: LabConfig, repos: int, tags: int, concurrency: int, prefix: str) -> dict[str, Any]:
    keys = load_keys(lab)
    key = keys["trusted"]
    user, password, verify = credentials.push_credentials(lab)
    base = oci.tar_layer({"etc/os-release": b'NAME="Alpine Linux"\nID=alpine\n',
                          "bin/busybox": seeded_bytes("scale-base", 32 * 1024)}, oci.OCI_LAYER)
    first_repo: list[str] = []          # the repository the base layer was first uploaded to
    base_lock = asyncio.Lock()
    linking: dict[str, asyncio.Future[None]] = {}
    items: list[dict[str, str]] = []
    now = datetime.now(UTC)
    lab.scan_dir.mkdir(parents=True, exist_ok=True)

    url = lab.registry_url()
    # One single-connection client per worker: httpcore's pool bookkeeping grows with pool
    # size x queued requests, so many small pools push faster than one large one.
    tokens = TokenStore()
    clients = [Registry(url, username=user, password=password, token_verify=verify, max_connections=1,
                        token_store=tokens) for _ in range(concurrency)]
    jobs: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for i in range(repos):
        for j in range(tags):
            jobs.put_nowait((i, j))

    async def do_link(reg: Registry, repo: str) -> None:
        async with base_lock:
            if not first_repo:
                await reg.push_blob(repo, base)
                first_repo.append(repo)
                return
        await reg.push_blob(repo, base, mount_from=first_repo[0])

    async def link_base(reg: Registry, repo: str) -> None:
        """Every tag of a repository waits for the one link (upload or mount) of the base."""
        if repo not in linking:
            linking[repo] = asyncio.ensure_future(do_link(reg, repo))
        await linking[repo]

    async def one(reg: Registry, i: int, j: int) -> None:
        repo, tag = f"{prefix}/repo-{i:04d}", f"v{j}"
        image = oci.build_image([base], oci=True, labels={"org.opencontainers.image.title": repo,
                                                          "org.opencontainers.image.version": tag})
        await link_base(reg, repo)
        await reg.push_blob(repo, image.config, check_exists=False)
        await reg.put_manifest(repo, tag, image.manifest)
        sig = cosign.legacy_signature(key, f"{lab.hostname}/{repo}", image.manifest.digest)
        await reg.push_blob(repo, sig.payload, check_exists=False)
        await reg.push_blob(repo, sig.config, check_exists=False)
        await reg.put_manifest(repo, sig.tag, sig.manifest)
        body = trivy.report(hostname=lab.hostname, repo=repo, tag=tag, repo_digest=image.manifest.digest,
                            image=image, created_at=now, severities=["LOW"])
        trivy.write(lab.scan_dir, repo, tag, body, now)
        items.append({"repo": repo, "tag": tag, "digest": image.manifest.digest})

    async def worker(reg: Registry) -> None:
        async with reg:
            while True:
                try:
                    i, j = jobs.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one(reg, i, j)

    t0 = time.monotonic()
    await asyncio.gather(*(worker(reg) for reg in clients))
    seconds = time.monotonic() - t0
    requests = sum(reg.requests for reg in clients)
    summary = {"repos": repos, "tags_per_repo": tags, "tags": repos * tags, "concurrency": concurrency,
               "prefix": prefix, "seconds": round(seconds, 3), "requests": requests,
               "tags_per_second": round(repos * tags / seconds, 1) if seconds else None,
               "requests_per_second": round(requests / seconds, 1) if seconds else None,
               "registry": lab.registry_url()}
    items.sort(key=lambda it: (it["repo"], it["tag"]))
    lab.base_dir.mkdir(parents=True, exist_ok=True)
    out = lab.base_dir / "scale.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**summary, "items": items}) + "\n")
    os.replace(tmp, out)
    return summary


def scale(lab: LabConfig, *, repos: int, tags: int, concurrency: int, prefix: str = "scale") -> dict[str, Any]:
    """Synchronous entry point; prints nothing (the CLI prints the summary)."""
    if repos < 1 or tags < 1 or concurrency < 1:
        raise ValueError("--repos, --tags and --concurrency must be positive")
    return asyncio.run(_scale(lab, repos, tags, concurrency, prefix))
