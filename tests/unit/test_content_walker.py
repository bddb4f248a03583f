"""The API walker against a scripted registry (httpx.MockTransport): content, budgets, hostility.

The registry content is real (lab builders: gzipped layers, cosign signatures and bundles); the
hostile behaviours are the ones the issue names: tiny pages, 429 with Retry-After, a Link header
that loops or leaves the registry, short-lived Bearer tokens.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from auditor.content.auth import RegistryAuth, parse_challenge, realm_allowed
from auditor.content.storage import StorageReader
from auditor.content.transport import PoolFetcher
from auditor.content.walker import Walker, WalkOptions
from auditor.credentials import Credentials, Secret
from auditor.errors import ProbeError

from .test_content_fake import BASE, FakeRegistry, new_key, standard_content

CREDS = Credentials("auditor", Secret("s3cret-pass"), "test")


async def _walk(reg: FakeRegistry, credentials: Credentials | None = None, auth: RegistryAuth | None = None,
                via: str = "mock", **options: Any) -> dict[str, Any]:
    """Walk `reg` through httpx.MockTransport (via="mock") or, via="socket", on a real loopback
    server with the audit's own HTTP client (PoolFetcher)."""
    async with reg.client() as client:
        opts = WalkOptions(**options)
        if opts.deadline is None:
            opts.deadline = asyncio.get_running_loop().time() + 30
        if via == "socket":
            with reg.serve() as base:
                fetcher = PoolFetcher(ssl.create_default_context)
                try:
                    return await Walker(fetcher, base, auth or RegistryAuth(client, credentials, base), opts).walk()
                finally:
                    await fetcher.aclose()
        auth = auth or RegistryAuth(client, credentials, BASE)
        auth.client = client
        return await Walker(client, BASE, auth, opts).walk()


def walk(reg: FakeRegistry, credentials: Credentials | None = None, via: str = "mock",
         **options: Any) -> dict[str, Any]:
    return asyncio.run(_walk(reg, credentials, via=via, **options))


VIA = pytest.mark.parametrize("via", ["mock", "socket"])


@pytest.fixture(scope="module")
def content() -> tuple[FakeRegistry, dict[str, str]]:
    return standard_content(new_key(), new_key())


def by_subject(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{t['repo']}:{t['tag']}": t for t in facts["tags"]}


@VIA
def test_walk_lists_every_tag_with_digest_platforms_and_signatures(content, via):
    reg, expected = content
    facts = walk(reg, via=via)
    tags = by_subject(facts)
    assert set(tags) == set(expected)  # signature, bundle-fallback tags are not audited as tags
    for subject, tag in tags.items():
        repo, _, name = subject.partition(":")
        assert tag["digest"] == reg.repos[repo].tags[name]
        assert "error" not in tag
    assert [p["platform"] for p in tags["base/os:multi"]["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert tags["app/api:v2-unsigned"]["signatures"] == []
    assert tags["app/web:v2-bundle"]["signatures"][0]["scheme"] == "bundle"
    assert tags["app/web:v2-bundle"]["signatures"][0]["via"] == "tag-schema"
    assert tags["app/api:v1"]["signatures"][0]["layers"][0]["payload_b64"]
    assert facts["repositories"] == 3
    largest = facts["largest_layer"]
    sizes = [len(d) for r in reg.repos.values() for d in r.blobs.values()]
    assert largest["size"] > 0 and largest["size"] <= max(sizes)
    image = facts["largest_image"]
    assert image["size"] >= largest["size"] and image["digest"].startswith("sha256:")


def test_at_most_three_requests_per_single_platform_tag_plus_one_per_platform():
    key = new_key()
    reg = FakeRegistry()
    for i in range(20):
        image = reg.push_image("many/tags", f"t{i:02d}", f"img{i}")
        reg.sign_legacy("many/tags", image.manifest, key)
    index = reg.push_index("many/tags", "multi", "multi")
    reg.sign_legacy("many/tags", index, key)
    facts = walk(reg)
    counts = facts["stats"]["requests"]
    per_tag = counts["manifest"] + counts["signature"] + counts["payload"]
    assert per_tag == 21 * 3
    assert counts["platform"] == 2  # +1 per platform manifest of the index
    assert counts.get("referrers", 0) <= 1  # the referrers API is probed once, then never again
    assert len(facts["tags"]) == 21


@VIA
def test_tiny_pages_are_walked_completely(content, via):
    reg, expected = content
    reg.page_size = 1
    try:
        facts = walk(reg, via=via)
    finally:
        reg.page_size = 100
    assert set(by_subject(facts)) == set(expected)
    assert facts["stats"]["requests"]["catalog"] == 3  # one repository per page


@VIA
def test_429_with_retry_after_is_honoured(content, via):
    reg, expected = content
    reg.throttle = {"/v2/_catalog": 1, "/manifests/v1": 1}
    reg.retry_after = "1"
    started = time.monotonic()
    facts = walk(reg, via=via)
    elapsed = time.monotonic() - started
    assert set(by_subject(facts)) == set(expected)
    assert facts["stats"]["retries"] == 2
    assert elapsed >= 1.0  # waited as told, did not hammer
    assert all("error" not in t for t in facts["tags"])


@VIA
def test_endless_429_beyond_the_deadline_fails_cleanly_and_fast(content, via):
    reg, _ = content
    reg.always_429 = True
    reg.retry_after = "3600"
    started = time.monotonic()
    try:
        with pytest.raises(ProbeError, match="429.*deadline"):
            asyncio.run(_deadline_walk(reg, 5.0, via))
    finally:
        reg.always_429 = False
    assert time.monotonic() - started < 5.0


async def _deadline_walk(reg: FakeRegistry, seconds: float, via: str = "mock") -> dict[str, Any]:
    return await _walk(reg, via=via, deadline=asyncio.get_running_loop().time() + seconds)


@VIA
def test_endless_429_without_retry_after_gives_up_after_bounded_retries(content, via):
    reg, _ = content
    reg.always_429 = True
    reg.retry_after = "0"
    try:
        with pytest.raises(ProbeError, match="HTTP 429"):
            walk(reg, max_retries=3, via=via)
    finally:
        reg.always_429 = False


@VIA
def test_looping_link_header_is_an_error(content, via):
    reg, _ = content
    reg.page_size, reg.link_mode = 1, "loop"
    try:
        with pytest.raises(ProbeError, match="loops"):
            walk(reg, via=via)
    finally:
        reg.page_size, reg.link_mode = 100, "normal"


@VIA
def test_off_host_link_header_is_refused(content, via):
    reg, _ = content
    reg.page_size, reg.link_mode = 1, "offhost"
    try:
        with pytest.raises(ProbeError, match="off the registry"):
            walk(reg, via=via)
    finally:
        reg.page_size, reg.link_mode = 100, "normal"
    assert not any("evil.test" in r for r in reg.requests)


@VIA
def test_basic_auth_with_and_without_credentials(content, via):
    reg, expected = content
    reg.auth = "basic"
    try:
        facts = walk(reg, CREDS, via=via)
        assert set(by_subject(facts)) == set(expected)
        assert facts["auth_scheme"] == "basic"
        with pytest.raises(ProbeError, match="401"):
            walk(reg, None, via=via)
        with pytest.raises(ProbeError, match="401"):
            walk(reg, Credentials("auditor", Secret("wrong"), "test"), via=via)
    finally:
        reg.auth = "none"


def test_bearer_tokens_are_per_scope_cached_and_refreshed_on_expiry(content):
    reg, expected = content
    reg.auth, reg.token_lifetime, reg.tokens_issued = "bearer", 1, 0

    async def twice() -> tuple[dict[str, Any], dict[str, Any], int]:
        async with reg.client() as client:
            auth = RegistryAuth(client, CREDS, BASE)
            first = await _walk(reg, auth=auth)
            issued = reg.tokens_issued
            await asyncio.sleep(1.2)  # every token has expired on the server
            second = await _walk(reg, auth=auth)
            return first, second, issued

    try:
        first, second, issued = asyncio.run(twice())
    finally:
        reg.auth, reg.token_lifetime = "none", 60
    assert set(by_subject(first)) == set(expected) == set(by_subject(second))
    assert all("error" not in t for t in first["tags"] + second["tags"])
    assert issued == 4  # catalog + one per repository: cached per scope, not per request
    assert reg.tokens_issued == 8  # refreshed after expiry
    assert first["auth_scheme"] == "bearer"


def test_bearer_challenge_parsing():
    c = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                        'scope="repository:a/b:pull,push",error="invalid_token"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "registry.example",
                        "scope": "repository:a/b:pull,push", "error": "invalid_token"}


def test_referrers_api_is_used_when_the_registry_has_it():
    key = new_key()
    reg = FakeRegistry()
    reg.referrers_api = True
    image = reg.push_image("r", "t", "img")
    b = reg.sign_bundle("r", image.manifest, key)
    del reg.repos["r"].tags[b.fallback_tag]  # only the referrers API knows the bundle
    facts = walk(reg)
    sig = facts["tags"][0]["signatures"]
    assert len(sig) == 1 and sig[0]["via"] == "referrers-api" and sig[0]["bundle"]


def test_storage_reader_gives_the_same_facts_as_the_api(content, tmp_path: Path):
    reg, _ = content
    api = walk(reg)
    reg.write_storage(tmp_path)
    disk = StorageReader(tmp_path).walk()
    assert disk["source"] == "storage"
    assert disk["tags"] == api["tags"]
    assert disk["largest_layer"] == api["largest_layer"]
    assert disk["largest_image"] == api["largest_image"]


def test_storage_reader_refuses_a_root_without_registry_storage(tmp_path: Path):
    (tmp_path / "not-a-registry.txt").write_text("x")  # an empty root is an empty registry, not this
    with pytest.raises(ProbeError, match="holds no registry storage"):
        StorageReader(tmp_path).walk()


def test_storage_reader_only_reads_blobs_the_repository_links(content, tmp_path: Path):
    reg, _ = content
    reg.write_storage(tmp_path)
    digest = reg.repos["app/api"].tags["v1"]
    link = tmp_path / "docker/registry/v2/repositories/app/api/_manifests/revisions/sha256" / digest[7:] / "link"
    link.unlink()
    tags = by_subject(StorageReader(tmp_path).walk())
    assert "not linked" in tags["app/api:v1"]["error"]


def test_a_looping_tag_list_is_an_error_on_that_repository_only(content):
    reg, expected = content
    reg.page_size, reg.link_mode, reg.link_scope = 1, "loop", "app/api/tags"
    try:
        facts = walk(reg)
    finally:
        reg.page_size, reg.link_mode, reg.link_scope = 100, "normal", ""
    tags = by_subject(facts)
    assert "loops" in tags["app/api:*"]["error"]
    others = {s for s in expected if not s.startswith("app/api:")}
    assert others <= set(tags)
    assert all("error" not in tags[s] for s in others)


@pytest.mark.parametrize("realm, ok", [
    ("https://registry.example.com/token", True),
    ("https://auth.example.com/token", True),
    ("https://example.com/token", True),
    ("https://auth.evil.test/token", False),
    ("https://example.com.evil.test/token", False),
    ("https://127.0.0.1:8443/token", True),
])
def test_credentials_only_go_to_a_realm_in_the_registry_domain(realm, ok):
    assert realm_allowed(realm, "https://registry.example.com") is ok
    assert not realm_allowed("https://com/token", "https://example.com")


def test_bearer_realm_off_domain_gets_no_credentials(content):
    reg, _ = content
    reg.auth = "bearer"
    before = len(reg.requests)
    try:
        async def off_domain() -> dict[str, Any]:
            async with reg.client() as client:
                auth = RegistryAuth(client, CREDS, "https://registry.elsewhere.example")
                return await _walk(reg, auth=auth)
        with pytest.raises(ProbeError, match="parent domain"):
            asyncio.run(off_domain())
    finally:
        reg.auth = "none"
    assert not any(r.startswith("GET /token") for r in reg.requests[before:])
    assert any(r.startswith("GET /v2/") for r in reg.requests[before:])


def test_requests_are_spread_over_several_small_pools(content):
    reg, expected = content
    counts = [0, 0, 0]

    def counting(i: int):
        def handle(request):
            counts[i] += 1
            return reg.handle(request)
        return handle

    async def run() -> dict[str, Any]:
        import httpx

        clients = [httpx.AsyncClient(transport=httpx.MockTransport(counting(i))) for i in range(3)]
        try:
            auth = RegistryAuth(clients[0], None, BASE)
            opts = WalkOptions(deadline=asyncio.get_running_loop().time() + 30)
            return await Walker(clients, BASE, auth, opts).walk()
        finally:
            for c in clients:
                await c.aclose()

    facts = asyncio.run(run())
    assert set(by_subject(facts)) == set(expected)
    assert all(n > 0 for n in counts) and max(counts) - min(counts) <= 1
