"""Benchmark: client CPU per request of the walker's HTTP stacks, against one local TLS server.

Why: in the content audit the client shares the machine's cores with the proxy it audits (the
lab: 2 cores, Apache checking bcrypt per request); every millisecond of client CPU per request
is taken from the server. This measures, on the same nginx (TLS, HTTP/1.1 keep-alive, one small
JSON manifest; started here on 127.0.0.1, stopped afterwards), with the same number of requests
in flight:
  httpx      an httpx.AsyncClient per 4 connections, round-robin (bounded_request, the audit's
             other probes), HTTP/1.1;
  httpcore   httpcore pools directly (httpx's engine, anyio network backend), HTTP/1.1;
  h11pool    auditor.h11pool.H11Pool (the walker's HTTP/1.1 path);
  httpx-h2 / httpcore-h2   the same over HTTP/2 (nginx with http2; the walker's HTTP/2 path is
             httpcore-h2).
Prints requests/s and client CPU ms per request (process CPU time / requests), best of --runs.

Usage: python3 bench/http_client.py [--requests 5000] [--concurrency 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

import httpcore  # noqa: E402
from tlspeer.servers import nginx, write_pki  # noqa: E402

from auditor.h11pool import H11Pool  # noqa: E402
from auditor.httpclient import bounded_request, make_client  # noqa: E402

MANIFEST = (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": ['
            + b",".join([b'{"digest": "sha256:' + b"a" * 64 + b'", "size": 1234}'] * 3) + b"]}")
HEADERS = {"Accept": "application/vnd.oci.image.manifest.v1+json", "Authorization": "Basic YmVuY2g6YmVuY2g="}
Fetch = Callable[[], Awaitable[int]]


async def _measure(fetch: Fetch, requests: int, concurrency: int) -> tuple[float, float]:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            status = await fetch()
            if status != 200:
                raise SystemExit(f"HTTP {status}")

    await asyncio.gather(*(one() for _ in range(concurrency * 4)))  # warm: connections, TLS sessions
    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.monotonic() - wall), 1000 * (time.process_time() - cpu) / requests


async def run_httpx(url: str, ca: str, requests: int, concurrency: int, http2: bool) -> tuple[float, float]:
    clients = [make_client(ca_bundle=ca, max_connections=4, http2=http2) for _ in range(max(1, concurrency // 4))]
    ring = itertools.cycle(clients)

    async def fetch() -> int:
        return (await bounded_request(next(ring), "GET", url, headers=HEADERS)).status_code

    try:
        return await _measure(fetch, requests, concurrency)
    finally:
        for client in clients:
            await client.aclose()


async def run_httpcore(url: str, ca: str, requests: int, concurrency: int, http2: bool) -> tuple[float, float]:
    pools = [httpcore.AsyncConnectionPool(ssl_context=ssl.create_default_context(cafile=ca), max_connections=4,
                                          http1=True, http2=http2) for _ in range(max(1, concurrency // 4))]
    ring = itertools.cycle(pools)
    host = url.split("/")[2]
    headers = [("Host", host), ("User-Agent", "regaudit"), *HEADERS.items()]

    async def fetch() -> int:
        async with next(ring).stream("GET", url, headers=headers) as response:
            async for _ in response.aiter_stream():
                pass
            return response.status

    try:
        return await _measure(fetch, requests, concurrency)
    finally:
        for pool in pools:
            await pool.aclose()


async def run_h11pool(url: str, ca: str, requests: int, concurrency: int, http2: bool) -> tuple[float, float]:
    pool = H11Pool(lambda: ssl.create_default_context(cafile=ca), max_connections=concurrency)

    async def fetch() -> int:
        return (await pool.request("GET", url, HEADERS, 4 * 1024 * 1024)).status_code

    try:
        return await _measure(fetch, requests, concurrency)
    finally:
        await pool.aclose()


RUNNERS: dict[str, tuple[Callable[..., Awaitable[tuple[float, float]]], bool]] = {
    "httpx": (run_httpx, False),
    "httpcore": (run_httpcore, False),
    "h11pool": (run_h11pool, False),
    "httpx-h2": (run_httpx, True),
    "httpcore-h2": (run_httpcore, True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regaudit-bench-http-"))
    try:
        work.chmod(0o755)
        www = work / "www"
        (www / "v2").mkdir(parents=True, mode=0o755)
        www.chmod(0o755)
        (www / "v2" / "manifest").write_bytes(MANIFEST)
        (www / "v2" / "manifest").chmod(0o644)
        pki = write_pki(work / "pki")
        extra = "keepalive_requests 1000000; default_type application/json;"
        results: dict[str, Any] = {}
        with nginx(pki, work / "n1", root=www, extra=extra) as port1, \
                nginx(pki, work / "n2", root=www, extra=extra, http2=True) as port2:
            for name, (runner, http2) in RUNNERS.items():
                url = f"https://localhost:{port2 if http2 else port1}/v2/manifest"
                best: tuple[float, float] | None = None
                for _ in range(args.runs):
                    rps, cpu = asyncio.run(runner(url, str(pki.ca), args.requests, args.concurrency, http2))
                    best = (rps, cpu) if best is None or cpu < best[1] else best
                assert best is not None
                results[name] = best
        print(f"{args.requests} GETs of a {len(MANIFEST)}-byte manifest over TLS to a local nginx, "
              f"{args.concurrency} in flight, best of {args.runs}:")
        print(f"{'client':14} {'req/s':>8} {'client CPU ms/req':>18}")
        for name, (rps, cpu) in results.items():
            print(f"{name:14} {rps:8.0f} {cpu:18.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
