"""Continuous-mode lab helpers (variant `watch`, prefix rgv-): a pusher that runs in the CI namespace
and pushes through the real Apache -> nginx -> registry chain, and the registry's own count of
notifications sent (its debug expvar).

CLI (run in rgv-ci with PYTHONPATH=tests): `python3 -m lab.watchlab LAB_JSON SCRIPT_JSON` runs a
list of steps and prints one JSON line per step with wall-clock times:
  {"op": "push", "repo": R, "tag": T, "seed": S}            -> {digest, done_at}
  {"op": "sign", "repo": R, "tag": T, "digest": D}          -> {sig_tag, done_at}   (cosign .sig, trusted key)
  {"op": "scan", "repo": R, "tag": T, "digest": D}          -> {path, done_at}      (clean Trivy report)
  {"op": "delete", "repo": R, "digest": D}                  -> {done_at}
  {"op": "stream", "repo": R, "count": N, "sign": bool, "concurrency": C} -> {digests, done_at, events}
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .content import cosign, oci, trivy
from .content.registry import Registry

SEVERITIES: list[str] = []


class ProxyRegistry(Registry):
    """The lab's Registry client, verifying the proxy's certificate with the lab CA."""

    async def __aenter__(self) -> ProxyRegistry:
        context = ssl.create_default_context(cafile=str(self.token_verify))
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        self._client = httpx.AsyncClient(base_url=self.base_url.rstrip("/"), limits=limits, verify=context,
                                         timeout=self.timeout, trust_env=False)
        return self


def image(seed: str) -> oci.Image:
    """A one-layer image whose content (so digest) depends on `seed` only."""
    layer = oci.tar_layer({f"etc/watch-{seed}": seed.encode()}, oci.OCI_LAYER)
    return oci.build_image([layer], oci=True)


class Pusher:
    def __init__(self, lab: dict[str, Any]) -> None:
        self.lab = lab
        self.hostname = lab["hostname"]
        self.key = cosign.load_private_key(Path(lab["cosign"]["private_key"]))
        self.images: dict[str, oci.Image] = {}

    def registry(self) -> Registry:
        password = Path(self.lab["auth"]["password_file"]).read_text().strip()
        return ProxyRegistry(self.lab["url"], username=self.lab["auth"]["username"], password=password,
                        token_verify=self.lab["tls"]["ca"], max_connections=16)

    async def push(self, reg: Registry, repo: str, tag: str, seed: str) -> dict[str, Any]:
        img = image(seed)
        for blob in img.blobs:
            await reg.push_blob(repo, blob)
        await reg.put_manifest(repo, tag, img.manifest)
        self.images[img.manifest.digest] = img
        return {"digest": img.manifest.digest, "done_at": time.time()}

    async def sign(self, reg: Registry, repo: str, digest: str) -> dict[str, Any]:
        sig = cosign.legacy_signature(self.key, f"{self.hostname}/{repo}", digest)
        for blob in (sig.payload, sig.config):
            await reg.push_blob(repo, blob)
        await reg.put_manifest(repo, sig.tag, sig.manifest)
        return {"sig_tag": sig.tag, "done_at": time.time()}

    def scan(self, repo: str, tag: str, digest: str, seed: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = trivy.report(hostname=self.hostname, repo=repo, tag=tag, repo_digest=digest,
                            image=self.images.get(digest) or image(seed), created_at=now, severities=SEVERITIES)
        path = trivy.write(Path(self.lab["scan_dir"]), repo, tag, body, now)
        return {"path": str(path), "done_at": time.time()}

    async def delete(self, reg: Registry, repo: str, digest: str) -> dict[str, Any]:
        response = await reg.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=f"repository:{repo}:delete,*")
        return {"status": response.status_code, "done_at": time.time()}

    async def stream(self, reg: Registry, repo: str, count: int, sign: bool, concurrency: int) -> dict[str, Any]:
        """`count` tags pushed (and signed) with `concurrency` pushes in flight."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        digests: dict[str, str] = {}
        stamp = f"{time.time_ns()}"

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                tag = f"s{i}"
                pushed = await self.push(reg, repo, tag, f"{stamp}-{i}")
                digests[tag] = pushed["digest"]
                if sign:
                    await self.sign(reg, repo, pushed["digest"])

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"digests": digests, "started_at": started, "done_at": time.time()}

    async def run(self, steps: list[dict[str, Any]]) -> None:
        async with self.registry() as reg:
            for step in steps:
                op = step["op"]
                if op == "push":
                    out = await self.push(reg, step["repo"], step["tag"], step["seed"])
                elif op == "sign":
                    out = await self.sign(reg, step["repo"], step["digest"])
                elif op == "scan":
                    out = self.scan(step["repo"], step["tag"], step["digest"], step.get("seed", ""))
                elif op == "delete":
                    out = await self.delete(reg, step["repo"], step["digest"])
                elif op == "sleep":
                    await asyncio.sleep(float(step["seconds"]))
                    out = {"done_at": time.time()}
                elif op == "stream":
                    out = await self.stream(reg, step["repo"], int(step["count"]), bool(step.get("sign")),
                                            int(step.get("concurrency", 4)))
                else:
                    raise SystemExit(f"unknown op {op}")
                print(json.dumps({"op": op, **out}), flush=True)


def notifications_sent(lab: Any) -> dict[str, int]:
    """The registry's own counters for the watcher's endpoint (expvar on the debug address)."""
    out = lab.run_in("registry", ["curl", "-sf", f"http://{lab.raw['registry']['debug_addr']}/debug/vars"], timeout=10)
    data = json.loads(out.stdout)
    for endpoint in data["registry"]["notifications"]["endpoints"]:
        if endpoint["name"] == "regaudit-watch":
            metrics = endpoint["Metrics"]
            return {k: int(metrics[k]) for k in ("Pending", "Events", "Successes", "Failures", "Errors")}
    raise KeyError("no regaudit-watch endpoint in the registry's expvar")


def main(argv: list[str]) -> int:
    lab = json.loads(Path(argv[0]).read_text())
    steps = json.loads(Path(argv[1]).read_text()) if argv[1] != "-" else json.load(sys.stdin)
    asyncio.run(Pusher(lab).run(steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
