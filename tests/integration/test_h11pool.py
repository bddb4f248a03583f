"""The walker's HTTP client (auditor.h11pool, auditor.content.transport) against real servers:
nginx over TLS (HTTP/1.1 keep-alive, HTTP/2 by ALPN, keep-alive limits, a whole walk over HTTP/2
through nginx to the scripted registry) and the hostile loopback servers (garbage, resets,
trickling, dropped keep-alive connections)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile.servers import HostileServer, make_cert
from tlspeer.servers import LocalPki, nginx, nginx_available, write_pki
from unit.test_content_fake import new_key, standard_content
from unit.test_content_walker import _walk

from auditor.content.auth import RegistryAuth
from auditor.content.transport import PoolFetcher
from auditor.content.walker import Walker, WalkOptions
from auditor.errors import ProbeError
from auditor.h11pool import H11Pool, split_url

pytestmark = pytest.mark.integration

BLOB = os.urandom(200_000)
MANIFEST = b'{"schemaVersion": 2, "layers": []}'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    if not nginx_available():
        pytest.skip("nginx not installed")
    return write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def www() -> Iterator[Path]:
    """Files nginx's unprivileged worker can read (pytest's own tmp tree is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="regaudit-www-"))
    try:
        root.chmod(0o755)
        (root / "v2").mkdir(mode=0o755)
        (root / "v2" / "manifest").write_bytes(MANIFEST)
        (root / "v2" / "blob").write_bytes(BLOB)
        for path in (root / "v2").iterdir():
            path.chmod(0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(pki: LocalPki, www: Path, tmp: Path, **options: Any) -> Iterator[str]:
    with nginx(pki, tmp, root=www, **options) as port:
        yield f"https://localhost:{port}"


@pytest.fixture(scope="module")
def http1(pki: LocalPki, www: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(pki, www, tmp_path_factory.mktemp("n1"), extra="keepalive_requests 1000;")


@pytest.fixture(scope="module")
def http2(pki: LocalPki, www: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(pki, www, tmp_path_factory.mktemp("n2"), http2=True)


@pytest.fixture(scope="module")
def short_keepalive(pki: LocalPki, www: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(pki, www, tmp_path_factory.mktemp("n3"), extra="keepalive_requests 3;")


def _factory(ca: Path | str) -> Any:
    return lambda: ssl.create_default_context(cafile=str(ca))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_many_requests_share_few_keepalive_connections(http1: str, pki: LocalPki) -> None:
    async def go() -> tuple[list[Any], int]:
        pool = H11Pool(_factory(pki.ca), max_connections=8)
        try:
            answers = await asyncio.gather(*(pool.request("GET", f"{http1}/v2/manifest", {"Accept": "x/y"}, 4096)
                                             for _ in range(200)))
            return answers, pool.connections_opened
        finally:
            await pool.aclose()

    answers, opened = run(go())
    assert {a.status_code for a in answers} == {200}
    assert all(a.body == MANIFEST and not a.truncated and a.http_version == "HTTP/1.1" for a in answers)
    assert answers[0].headers["content-length"] == str(len(MANIFEST))
    assert 1 <= opened <= 8  # 200 requests on at most the pool's 8 connections


def test_bodies_are_exact_or_truncated_at_the_limit(http1: str, pki: LocalPki) -> None:
    async def go() -> tuple[Any, Any, Any, int]:
        pool = H11Pool(_factory(pki.ca), max_connections=1)
        try:
            whole = await pool.request("GET", f"{http1}/v2/blob", {}, len(BLOB))
            cut = await pool.request("GET", f"{http1}/v2/blob", {}, 1000)
            after = await pool.request("GET", f"{http1}/v2/manifest", {}, 4096)
            return whole, cut, after, pool.connections_opened
        finally:
            await pool.aclose()

    whole, cut, after, opened = run(go())
    assert hashlib.sha256(whole.body).digest() == hashlib.sha256(BLOB).digest() and not whole.truncated
    assert cut.truncated and cut.body == BLOB[:1000]
    assert after.body == MANIFEST
    assert opened == 2  # the truncated answer's connection is closed, never reused mid-body


def test_server_closing_after_n_requests_is_followed_by_new_connections(short_keepalive: str,
                                                                         pki: LocalPki) -> None:
    async def go() -> tuple[list[int], int]:
        pool = H11Pool(_factory(pki.ca), max_connections=1)
        try:
            statuses = [(await pool.request("GET", f"{short_keepalive}/v2/manifest", {}, 4096)).status_code
                        for _ in range(12)]
            return statuses, pool.connections_opened
        finally:
            await pool.aclose()

    statuses, opened = run(go())
    assert statuses == [200] * 12
    assert opened == 4  # nginx closes every connection after its 3rd answer


def test_missing_file_and_http_errors_are_answers_not_exceptions(http1: str, pki: LocalPki) -> None:
    async def go() -> Any:
        pool = H11Pool(_factory(pki.ca))
        try:
            return await pool.request("GET", f"{http1}/v2/nothing-here", {}, 4096)
        finally:
            await pool.aclose()

    assert run(go()).status_code == 404


def test_http2_server_is_spoken_to_in_http2(http2: str, http1: str, pki: LocalPki) -> None:
    async def go() -> tuple[list[Any], Any, set[Any]]:
        fetcher = PoolFetcher(_factory(pki.ca), max_connections=8)
        try:
            h2 = await asyncio.gather(*(fetcher.fetch("GET", f"{http2}/v2/blob", {}, len(BLOB)) for _ in range(20)))
            h1 = await fetcher.fetch("GET", f"{http1}/v2/manifest", {}, 4096)
            return h2, h1, set(fetcher.http2_origins)
        finally:
            await fetcher.aclose()

    h2, h1, origins = run(go())
    assert {a.http_version for a in h2} == {"HTTP/2"}
    assert all(a.status_code == 200 and a.body == BLOB for a in h2)
    assert h1.http_version == "HTTP/1.1" and h1.body == MANIFEST
    assert origins == {split_url("GET", http2)[0]}


def test_certificate_of_another_ca_is_refused(http1: str, tmp_path: Path) -> None:
    other_ca, _ = make_cert(tmp_path)

    async def go() -> None:
        pool = H11Pool(_factory(other_ca))
        try:
            await pool.request("GET", f"{http1}/v2/manifest", {}, 4096)
        finally:
            await pool.aclose()

    with pytest.raises(ProbeError, match="CERTIFICATE_VERIFY_FAILED"):
        run(go())


def test_keepalive_connection_dropped_at_reuse_is_retried_once() -> None:
    async def go(url: str) -> tuple[list[int], int]:
        pool = H11Pool(ssl.create_default_context, max_connections=1)
        try:
            statuses = [(await pool.request("GET", f"{url}/v2/", {}, 4096)).status_code for _ in range(5)]
            return statuses, pool.connections_opened
        finally:
            await pool.aclose()

    with HostileServer("drop-reused") as server:
        statuses, opened = run(go(server.url))
    assert statuses == [200] * 5
    assert opened == 5  # each reuse was dropped by the server and retried on a new connection


@pytest.mark.parametrize("behaviour,fragment", [
    ("garbage", "malformed HTTP answer"),
    ("reset", "GET http://127.0.0.1:"),
])
def test_broken_servers_give_one_clear_error(behaviour: str, fragment: str) -> None:
    async def go(url: str) -> None:
        pool = H11Pool(ssl.create_default_context, timeout=3.0)
        try:
            await pool.request("GET", f"{url}/v2/", {"Authorization": "Basic c2VjcmV0"}, 4096)
        finally:
            await pool.aclose()

    with HostileServer(behaviour) as server, pytest.raises(ProbeError) as caught:
        run(go(server.url))
    assert fragment in str(caught.value)
    assert "c2VjcmV0" not in str(caught.value)


def test_trickling_server_is_cut_at_the_total_timeout() -> None:
    async def go(url: str) -> tuple[float, int]:
        pool = H11Pool(ssl.create_default_context, timeout=2.0, total_timeout=2.5)
        started = time.monotonic()
        try:
            with pytest.raises(ProbeError, match="no complete answer within"):
                await pool.request("GET", f"{url}/v2/", {}, 4096)
            return time.monotonic() - started, pool._open
        finally:
            await pool.aclose()

    with HostileServer("slowloris") as server:
        seconds, still_open = run(go(server.url))
    assert seconds < 6.0
    assert still_open == 0


def test_cancelled_request_closes_its_connection() -> None:
    async def go(url: str) -> int:
        pool = H11Pool(ssl.create_default_context, timeout=30.0, total_timeout=30.0)
        task = asyncio.create_task(pool.request("GET", f"{url}/v2/", {}, 4096))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pool._open

    with HostileServer("slowloris") as server:
        assert run(go(server.url)) == 0


def test_tls_junk_is_a_connection_error(tmp_path: Path) -> None:
    async def go(url: str) -> None:
        pool = H11Pool(ssl.create_default_context, connect_timeout=3.0)
        try:
            await pool.request("GET", url.replace("http://", "https://") + "/v2/", {}, 4096)
        finally:
            await pool.aclose()

    with HostileServer("tls-junk") as server, pytest.raises(ProbeError, match="SSL"):
        run(go(server.url))


@pytest.mark.parametrize("url,origin,authority,target", [
    ("https://registry.example/v2/a/tags/list?n=10", ("https", "registry.example", 443), "registry.example",
     "/v2/a/tags/list?n=10"),
    ("https://registry.example:5000/v2/", ("https", "registry.example", 5000), "registry.example:5000", "/v2/"),
    ("http://[fd00::10]:5000/v2/", ("http", "fd00::10", 5000), "[fd00::10]:5000", "/v2/"),
    ("http://127.0.0.1", ("http", "127.0.0.1", 80), "127.0.0.1", "/"),
])
def test_split_url(url: str, origin: tuple[str, str, int], authority: str, target: str) -> None:
    assert split_url("GET", url) == (origin, authority, target)


@pytest.mark.parametrize("url", ["ftp://x/", "https://:99/", "https://host:99999/", "/relative"])
def test_split_url_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ProbeError):
        split_url("GET", url)


def test_the_walker_speaks_http2_to_a_registry_behind_an_h2_proxy(pki: LocalPki, tmp_path: Path) -> None:
    """The whole walk over HTTP/2: nginx (TLS, http2) proxying to the scripted registry."""
    reg, expected = standard_content(new_key(), new_key())
    reference = asyncio.run(_walk(reg))

    async def go(base: str) -> tuple[dict[str, Any], set[Any], int]:
        fetcher = PoolFetcher(_factory(pki.ca))
        async with httpx.AsyncClient() as token_client:
            try:
                options = WalkOptions(deadline=asyncio.get_running_loop().time() + 60)
                facts = await Walker(fetcher, base, RegistryAuth(token_client, None, base), options).walk()
                return facts, set(fetcher.http2_origins), fetcher.http1.connections_opened
            finally:
                await fetcher.aclose()

    with reg.serve() as upstream, nginx(pki, tmp_path / "h2", http2=True, proxy_to=upstream) as port:
        base = f"https://localhost:{port}"
        facts, origins, http1_connections = run(go(base))
    assert {f"{t['repo']}:{t['tag']}" for t in facts["tags"]} == set(expected)
    assert facts["tags"] == reference["tags"]  # the same facts as over HTTP/1.1
    assert origins == {split_url("GET", base)[0]} and http1_connections == 0
    assert facts["stats"]["transport"]["http2_origins"] == [f"https://localhost:{port}"]
    assert facts["stats"]["requests_per_tag"] == reference["stats"]["requests_per_tag"]
