"""A scriptable in-memory Docker Distribution registry for the walker's unit tests (no tests here).

`FakeRegistry` holds real image content built with the lab's builders (tests/lab/content: real
gzipped layers, cosign-format signatures and bundles), serves the registry HTTP API V2 through
`httpx.MockTransport`, or on a real loopback socket (`serve()`: HTTP/1.1 keep-alive, for the
walker's own HTTP client), with knobs for hostile behaviour (tiny pages, 429 with Retry-After, looping
or off-host Link headers, Basic or Bearer auth with short-lived tokens), counts requests, and can
write the same content as the filesystem driver's on-disk layout.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `lab` package

from lab.content import cosign as labcosign
from lab.content import oci

BASE = "https://registry.fake.test"
HOST = "registry.fake.test"


@dataclass
class Repo:
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, oci.Blob] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


class FakeRegistry:
    """In-memory registry content plus the HTTP behaviour knobs."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.page_size = 100
        self.link_mode = "normal"          # normal | loop | offhost | none
        self.link_scope = ""                # hostile Link only on paths containing this
        self.tags_paginate = True
        self.throttle: dict[str, int] = {}  # path substring -> number of 429s still to send
        self.retry_after = "1"
        self.always_429 = False
        self.auth = "none"                  # none | basic | bearer
        self.password = "s3cret-pass"
        self.token_lifetime = 60
        self.tokens_issued = 0
        self.requests: list[str] = []
        self.referrers_api = False

    # -- content --------------------------------------------------------------------------
    def repo(self, name: str) -> Repo:
        return self.repos.setdefault(name, Repo())

    def put_manifest(self, repo: str, blob: oci.Blob, tag: str | None = None) -> None:
        r = self.repo(repo)
        r.manifests[blob.digest] = blob
        if tag:
            r.tags[tag] = blob.digest

    def put_blob(self, repo: str, blob: oci.Blob) -> None:
        self.repo(repo).blobs[blob.digest] = blob.data

    def push_image(self, repo: str, tag: str | None, name: str, *, arch: str = "amd64", size: int = 1024,
                   oci_types: bool = True) -> oci.Image:
        layer_type = oci.OCI_LAYER if oci_types else oci.DOCKER_LAYER
        layer = oci.tar_layer({f"opt/{name}": name.encode() * (size // max(1, len(name)))}, layer_type)
        image = oci.build_image([layer], oci=oci_types, architecture=arch, labels={"name": name})
        for blob in image.blobs:
            self.put_blob(repo, blob)
        self.put_manifest(repo, image.manifest, tag)
        return image

    def push_index(self, repo: str, tag: str, name: str) -> oci.Blob:
        children = [self.push_image(repo, None, f"{name}-{a}", arch=a) for a in ("amd64", "arm64")]
        index = oci.image_index([(c.manifest, {"architecture": a, "os": "linux"})
                                 for c, a in zip(children, ("amd64", "arm64"), strict=True)])
        self.put_manifest(repo, index, tag)
        return index

    def sign_legacy(self, repo: str, subject: oci.Blob, key: ec.EllipticCurvePrivateKey, *,
                    reference: str | None = None, payload_digest: str | None = None) -> labcosign.LegacySignature:
        sig = labcosign.legacy_signature(key, reference or f"{HOST}/{repo}", subject.digest,
                                         payload_digest=payload_digest)
        self.put_blob(repo, sig.payload)
        self.put_blob(repo, sig.config)
        self.put_manifest(repo, sig.manifest, sig.tag)
        return sig

    def sign_bundle(self, repo: str, subject: oci.Blob, key: ec.EllipticCurvePrivateKey) -> labcosign.BundleSignature:
        b = labcosign.bundle_signature(key, subject, "2026-11-28T00:00:00Z")
        self.put_blob(repo, b.bundle)
        self.put_blob(repo, b.config)
        self.put_manifest(repo, b.manifest)
        self.put_manifest(repo, b.fallback_index, b.fallback_tag)
        return b

    # -- HTTP -----------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), follow_redirects=False)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the registry API on 127.0.0.1 (plain HTTP/1.1, keep-alive); yields the base URL."""
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                request = httpx.Request("GET", BASE + self.path, headers=dict(self.headers.items()))
                response = registry.handle(request)
                body = response.read()
                self.send_response(response.status_code)
                for name, value in response.headers.multi_items():
                    if name.lower() not in ("content-length", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def _authorized(self, request: httpx.Request, scope: str) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if self.auth == "basic":
            import base64

            good = "Basic " + base64.b64encode(f"auditor:{self.password}".encode()).decode()
            if header != good:
                return _response(401, headers={"WWW-Authenticate": 'Basic realm="fake"'}, json={"errors": []})
        elif self.auth == "bearer" and (not header.startswith("Bearer ") or not _token_ok(header[7:], scope)):
            challenge = f'Bearer realm="https://auth.fake.test/token",service="{HOST}",scope="{scope}"'
            return _response(401, headers={"WWW-Authenticate": challenge}, json={"errors": []})
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        self.requests.append(f"{request.method} {url.path}")
        if url.host == "auth.fake.test":
            return self._token(request)
        path = url.path
        if self.always_429 or any(k in path and n > 0 for k, n in self.throttle.items()):
            for k, n in self.throttle.items():
                if k in path and n > 0:
                    self.throttle[k] = n - 1
                    break
            return _response(429, headers={"Retry-After": self.retry_after}, json={"errors": []})
        if path == "/v2/_catalog":
            denied = self._authorized(request, "registry:catalog:*")
            return denied or self._page(request, sorted(self.repos), "repositories", {})
        parts = path[len("/v2/"):]
        for marker in ("/tags/list", "/manifests/", "/blobs/", "/referrers/"):
            if marker in parts:
                name, _, rest = parts.partition(marker)
                denied = self._authorized(request, f"repository:{name}:pull")
                if denied:
                    return denied
                repo = self.repos.get(name)
                if repo is None:
                    return _response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
                if marker == "/tags/list":
                    if not self.tags_paginate:
                        return _response(200, json={"name": name, "tags": sorted(repo.tags)})
                    return self._page(request, sorted(repo.tags), "tags", {"name": name})
                if marker == "/manifests/":
                    digest = repo.tags.get(rest, rest)
                    blob = repo.manifests.get(digest)
                    if blob is None:
                        return _response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
                    return _response(200, content=blob.data, headers={
                        "Content-Type": blob.media_type, "Docker-Content-Digest": blob.digest})
                if marker == "/blobs/":
                    data = repo.blobs.get(rest)
                    if data is None:
                        return _response(404, json={"errors": [{"code": "BLOB_UNKNOWN"}]})
                    return _response(200, content=data, headers={"Content-Type": "application/octet-stream"})
                if marker == "/referrers/" and self.referrers_api:
                    entries = []
                    for blob in repo.manifests.values():
                        doc = json.loads(blob.data)
                        if (doc.get("subject") or {}).get("digest") == rest:
                            entries.append({"mediaType": blob.media_type, "digest": blob.digest,
                                            "size": blob.size, "artifactType": doc.get("artifactType", ""),
                                            "annotations": doc.get("annotations", {})})
                    return _response(200, json={"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                                                     "manifests": entries},
                                          headers={"Content-Type": oci.OCI_INDEX})
        return _response(404, json={"errors": [{"code": "NOT_FOUND"}]})

    def _page(self, request: httpx.Request, items: list[str], key: str, extra: dict[str, Any]) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        n = min(int(query.get("n", ["100"])[0]), self.page_size)
        last = query.get("last", [""])[0]
        rest = [i for i in items if i > last] if last else items
        page = rest[:n]
        headers = {}
        if len(rest) > n and self.link_mode != "none":
            path = request.url.path
            mode = self.link_mode if self.link_scope in path else "normal"
            if mode == "loop":
                link = f"<{path}?n={n}>"
            elif mode == "offhost":
                link = f"<https://evil.test{path}?n={n}&last={page[-1]}>"
            else:
                link = f"<{path}?n={n}&last={page[-1]}>"
            headers["Link"] = f'{link}; rel="next"'
        return _response(200, json={**extra, key: page}, headers=headers)

    def _token(self, request: httpx.Request) -> httpx.Response:
        import base64

        good = "Basic " + base64.b64encode(f"auditor:{self.password}".encode()).decode()
        if request.headers.get("authorization") != good:
            return _response(401, json={"details": "bad credentials"})
        scope = parse_qs(urlsplit(str(request.url)).query).get("scope", [""])[0]
        self.tokens_issued += 1
        expiry = time.monotonic() + self.token_lifetime
        return _response(200, json={"token": f"tok|{scope}|{self.tokens_issued}|{expiry}",
                                         "expires_in": self.token_lifetime})

    # -- disk -----------------------------------------------------------------------------
    def write_storage(self, root: Path) -> None:
        """The filesystem driver's layout of the same content."""
        v2 = root / "docker" / "registry" / "v2"
        for name, repo in self.repos.items():
            rdir = v2 / "repositories" / name
            for digest, blob in repo.manifests.items():
                _write(v2 / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data", blob.data)
                _write(rdir / "_manifests" / "revisions" / "sha256" / digest[7:] / "link", digest.encode())
            for digest, data in repo.blobs.items():
                _write(v2 / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data", data)
                _write(rdir / "_layers" / "sha256" / digest[7:] / "link", digest.encode())
            for tag, digest in repo.tags.items():
                _write(rdir / "_manifests" / "tags" / tag / "current" / "link", digest.encode())
                _write(rdir / "_manifests" / "tags" / tag / "index" / "sha256" / digest[7:] / "link", digest.encode())


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _token_ok(token: str, scope: str) -> bool:
    parts = token.split("|")
    return len(parts) == 4 and parts[0] == "tok" and parts[1] == scope and float(parts[3]) > time.monotonic()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def standard_content(trusted: ec.EllipticCurvePrivateKey, untrusted: ec.EllipticCurvePrivateKey) -> tuple[
        FakeRegistry, dict[str, str]]:
    """A registry with every case the checks judge; returns it and {repo:tag: expected verdict}."""
    reg = FakeRegistry()
    expected: dict[str, str] = {}
    a = reg.push_image("app/api", "v1", "api-v1", oci_types=False)
    reg.sign_legacy("app/api", a.manifest, trusted)
    expected["app/api:v1"] = "valid"
    reg.put_manifest("app/api", a.manifest, "latest")
    expected["app/api:latest"] = "valid"
    b = reg.push_image("app/api", "v2-unsigned", "api-v2")
    expected["app/api:v2-unsigned"] = "unsigned"
    c = reg.push_image("app/api", "v3-replayed", "api-v3")
    reg.sign_legacy("app/api", c.manifest, trusted, payload_digest=a.manifest.digest)
    expected["app/api:v3-replayed"] = "invalid"
    d = reg.push_image("app/web", "v1-untrusted", "web-v1")
    reg.sign_legacy("app/web", d.manifest, untrusted)
    expected["app/web:v1-untrusted"] = "untrusted"
    e = reg.push_image("app/web", "v2-bundle", "web-v2")
    reg.sign_bundle("app/web", e.manifest, trusted)
    expected["app/web:v2-bundle"] = "valid"
    f = reg.push_index("base/os", "multi", "os")
    reg.sign_legacy("base/os", f, trusted)
    expected["base/os:multi"] = "valid"
    g = reg.push_image("base/os", "other-repo-ref", "os-ref")
    reg.sign_legacy("base/os", g.manifest, trusted, reference=f"{HOST}/app/api")
    expected["base/os:other-repo-ref"] = "invalid"
    h = reg.push_image("app/web", "v3-bundle-untrusted", "web-v3")
    reg.sign_bundle("app/web", h.manifest, untrusted)
    expected["app/web:v3-bundle-untrusted"] = "untrusted"
    del b
    return reg, expected


def many_repositories(root: Path, count: int, big: tuple[int, int], *, second_tag: bool = False) -> None:
    """Write the standard content plus `count` repositories `many/repo-NN` (signed, every third by an
    untrusted key) into a storage under `root`; the two repositories numbered in `big` share the
    largest layer size, far apart so that different workers' shares hold them."""
    trusted, untrusted = new_key(), new_key()
    reg, _expected = standard_content(trusted, untrusted)
    for n in range(count):
        name, size = ("big", 90000) if n in big else (f"img-{n}", 1000 + n)
        image = reg.push_image(f"many/repo-{n:02d}", "v1", name, size=size)
        reg.sign_legacy(f"many/repo-{n:02d}", image.manifest, trusted if n % 3 else untrusted)
        if second_tag:
            reg.push_image(f"many/repo-{n:02d}", "v2", f"img-{n}-b", size=500)
    reg.write_storage(root)


def _response(status: int, *, content: bytes | None = None, json: Any = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
    """A response whose body streams (httpx reads `content=` bodies eagerly, which a streamed
    read through `client.stream` then refuses with StreamConsumed)."""
    import json as jsonlib

    body = content if content is not None else jsonlib.dumps(json if json is not None else {}).encode()
    head = {"Content-Length": str(len(body))}
    if content is None:
        head["Content-Type"] = "application/json"
    head.update(headers or {})
    return httpx.Response(status, headers=head, stream=httpx.ByteStream(body))
