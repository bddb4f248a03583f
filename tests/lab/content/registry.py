"""A small async client for the registry HTTP API V2, used to push lab content.

Contract: `Registry(base_url, ...)` talks to one registry over httpx; it answers 401
challenges with Basic credentials or the Bearer token flow (tokens cached per scope) and
pushes blobs monolithically (POST then PUT) or in chunks (POST, PATCH with Content-Range, PUT),
skipping blobs the repository already has (HEAD) and mounting them across repositories when
`mount_from` is given. Absolute `Location` headers are reduced to their path and query, since a
registry configured with `http.host` names its public URL there, not the address we push to.
Every unexpected status raises `RegistryError` with the method, URL path and body excerpt;
credentials are never part of a message.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .oci import MANIFEST_TYPES, Blob

CHUNK = 16 * 1024 * 1024
MONOLITHIC_MAX = 32 * 1024 * 1024
RETRIES = 4


class RegistryError(RuntimeError):
    """The registry answered something other than what the API promises."""


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """Parse `Bearer realm="...",service="...",scope="..."` into (scheme, params)."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip()
        j = eq + 1
        if j < len(rest) and rest[j] == '"':
            end = rest.find('"', j + 1)
            end = len(rest) if end < 0 else end
            params[key.lower()] = rest[j + 1:end]
            i = end + 1
        else:
            end = rest.find(",", j)
            end = len(rest) if end < 0 else end
            params[key.lower()] = rest[j:end].strip()
            i = end
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class TokenStore:
    """Bearer tokens by scope, shareable between clients; remembers the registry's challenge so
    later requests fetch their token before sending instead of after a 401."""

    tokens: dict[str, _Token] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    challenge: dict[str, str] | None = None

    def valid(self, scope: str) -> str | None:
        tok = self.tokens.get(scope)
        return tok.value if tok and tok.expires > time.monotonic() + 5 else None


@dataclass
class Registry:
    """One registry endpoint. `username`/`password` are used for Basic or token requests."""

    base_url: str
    username: str | None = None
    password: str | None = None
    token_verify: Any = True
    max_connections: int = 32
    timeout: float = 300.0
    requests: int = 0
    uploads: dict[str, int] = field(default_factory=dict)
    token_store: TokenStore = field(default_factory=TokenStore)
    _client: httpx.AsyncClient | None = field(default=None, repr=False)
    _token_client: httpx.AsyncClient | None = field(default=None, repr=False)

    async def __aenter__(self) -> Registry:
        limits = httpx.Limits(max_connections=self.max_connections,
                              max_keepalive_connections=self.max_connections)
        self._client = httpx.AsyncClient(base_url=self.base_url.rstrip("/"), limits=limits,
                                         timeout=self.timeout, trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("Registry used outside 'async with'")
        return self._client

    # -- auth ---------------------------------------------------------------------------
    async def _token(self, params: dict[str, str], scope: str) -> str:
        store = self.token_store
        store.challenge = params
        async with store.locks.setdefault(scope, asyncio.Lock()):
            cached = store.valid(scope)
            if cached:
                return cached
            realm = params.get("realm", "")
            if not realm.startswith(("https://", "http://")):
                raise RegistryError(f"token realm is not an http(s) URL: {realm!r}")
            if self._token_client is None:
                verify = self.token_verify
                if isinstance(verify, str):   # a CA bundle path
                    verify = ssl.create_default_context(cafile=verify)
                self._token_client = httpx.AsyncClient(verify=verify, timeout=30.0, trust_env=False)
            query: dict[str, Any] = {"service": params.get("service", "")}
            if scope:   # several scopes, space-separated, become repeated scope parameters
                query["scope"] = scope.split(" ")
            auth = (self.username, self.password) if self.username and self.password else None
            resp = await self._token_client.get(realm, params=query, auth=auth)
            self.requests += 1
            if resp.status_code != 200:
                raise RegistryError(f"token request for scope {scope!r} answered {resp.status_code}")
            body = resp.json()
            value = body.get("token") or body.get("access_token")
            if not value:
                raise RegistryError("token response carries neither token nor access_token")
            lifetime = float(body.get("expires_in") or 60)
            store.tokens[scope] = _Token(value, time.monotonic() + lifetime)
            return str(value)

    async def _send(self, method: str, url: str, headers: dict[str, str], content: bytes | None,
                    params: dict[str, str] | None) -> httpx.Response:
        """One exchange; idempotent ones (GET, HEAD, PUT of a manifest) are retried on transport
        errors, 429 and 502-504, honouring Retry-After, up to RETRIES times."""
        idempotent = method in ("GET", "HEAD") or (method == "PUT" and "/manifests/" in url)
        for attempt in range(RETRIES):
            try:
                resp = await self.client.request(method, url, headers=headers, content=content, params=params)
            except httpx.TransportError:
                if not idempotent or attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.25 * 2 ** attempt)
                continue
            finally:
                self.requests += 1
            if idempotent and resp.status_code in (429, 502, 503, 504) and attempt < RETRIES - 1:
                retry_after = resp.headers.get("retry-after", "")
                delay = float(retry_after) if retry_after.isdigit() else 0.25 * 2 ** attempt
                await asyncio.sleep(min(delay, 10.0))
                continue
            return resp
        raise RegistryError(f"{method} {url}: no answer after {RETRIES} attempts")

    async def request(self, method: str, url: str, *, scope: str = "",
                      headers: dict[str, str] | None = None, content: bytes | None = None,
                      params: dict[str, str] | None = None) -> httpx.Response:
        """Send one request, answering a 401 challenge once (Basic or Bearer for `scope`)."""
        hdrs = dict(headers or {})
        store = self.token_store
        if scope and store.challenge is not None:   # a Bearer registry: fetch before sending
            hdrs["Authorization"] = f"Bearer {store.valid(scope) or await self._token(store.challenge, scope)}"
        resp = await self._send(method, url, hdrs, content, params)
        if resp.status_code != 401:
            return resp
        scheme, chal = _challenge(resp.headers.get("www-authenticate", ""))
        if scheme == "bearer":
            # ask for the scope this operation needs (it covers the challenge's); the challenge's
            # own scope only when the caller named none
            token = await self._token(chal, scope or chal.get("scope", ""))
            hdrs["Authorization"] = f"Bearer {token}"
        elif scheme == "basic" and self.username and self.password:
            pair = f"{self.username}:{self.password}".encode()
            hdrs["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            return resp
        return await self._send(method, url, hdrs, content, params)

    @staticmethod
    def _path(location: str) -> str:
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _fail(resp: httpx.Response, what: str) -> RegistryError:
        return RegistryError(f"{what}: {resp.request.method} {resp.request.url.path} answered "
                             f"{resp.status_code}: {resp.text[:300]}")

    # -- blobs --------------------------------------------------------------------------
    async def blob_exists(self, repo: str, digest: str) -> bool:
        resp = await self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_scope(repo, "pull"))
        return resp.status_code == 200

    async def push_blob(self, repo: str, blob: Blob, *, chunked: bool | None = None,
                        mount_from: str | None = None, check_exists: bool = True) -> str:
        """Upload `blob` unless present; returns how: 'exists', 'mounted', 'monolithic', 'chunked'.

        `check_exists=False` skips the HEAD for blobs known to be new (saves a round trip).
        """
        how = await self._push_blob(repo, blob, chunked, mount_from, check_exists)
        self.uploads[how] = self.uploads.get(how, 0) + 1
        return how

    async def _push_blob(self, repo: str, blob: Blob, chunked: bool | None, mount_from: str | None,
                         check_exists: bool) -> str:
        scope = _scope(repo, "pull,push")
        if check_exists and await self.blob_exists(repo, blob.digest):
            return "exists"
        params: dict[str, str] | None = None
        if mount_from and mount_from != repo:
            params = {"mount": blob.digest, "from": mount_from}
            scope = f"{scope} {_scope(mount_from, 'pull')}"   # a mount reads the source repository
        resp = await self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, params=params)
        if resp.status_code == 201:
            return "mounted"
        if resp.status_code != 202:
            raise self._fail(resp, f"starting upload of {blob.digest} to {repo}")
        location = self._path(resp.headers["location"])
        use_chunks = blob.size > MONOLITHIC_MAX if chunked is None else chunked
        if use_chunks:
            offset = 0
            while offset < blob.size:
                piece = blob.data[offset:offset + CHUNK]
                end = offset + len(piece) - 1
                resp = await self.request(
                    "PATCH", location, scope=scope, content=piece,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{end}"})
                if resp.status_code != 202:
                    raise self._fail(resp, f"uploading chunk {offset}-{end} of {blob.digest}")
                location = self._path(resp.headers["location"])
                offset = end + 1
            body = b""
        else:
            body = blob.data
        sep = "&" if "?" in location else "?"
        resp = await self.request(
            "PUT", f"{location}{sep}digest={blob.digest}", scope=scope, content=body,
            headers={"Content-Type": "application/octet-stream"})
        if resp.status_code != 201:
            raise self._fail(resp, f"completing upload of {blob.digest} to {repo}")
        if resp.headers.get("docker-content-digest", blob.digest) != blob.digest:
            raise RegistryError(f"registry stored {blob.digest} as {resp.headers['docker-content-digest']}")
        return "chunked" if use_chunks else "monolithic"

    # -- manifests ----------------------------------------------------------------------
    async def put_manifest(self, repo: str, reference: str, manifest: Blob) -> str:
        """PUT a manifest by tag or digest; returns the digest the registry reports."""
        resp = await self.request("PUT", f"/v2/{repo}/manifests/{reference}",
                                  scope=_scope(repo, "pull,push"), content=manifest.data,
                                  headers={"Content-Type": manifest.media_type})
        if resp.status_code != 201:
            raise self._fail(resp, f"putting manifest {repo}:{reference}")
        digest = resp.headers.get("docker-content-digest", "")
        if digest and digest != manifest.digest:
            raise RegistryError(f"{repo}:{reference} stored as {digest}, expected {manifest.digest}")
        return manifest.digest

    async def get_manifest(self, repo: str, reference: str,
                           accept: tuple[str, ...] = MANIFEST_TYPES) -> httpx.Response:
        return await self.request("GET", f"/v2/{repo}/manifests/{reference}",
                                  scope=_scope(repo, "pull"), headers={"Accept": ",".join(accept)})

    async def referrers_supported(self, repo: str, digest: str) -> bool:
        """What go-containerregistry asks before using the referrers tag schema."""
        resp = await self.request("GET", f"/v2/{repo}/referrers/{digest}", scope=_scope(repo, "pull"),
                                  headers={"Accept": "application/vnd.oci.image.index.v1+json"})
        return resp.status_code == 200 and resp.headers.get("content-type", "").startswith(
            "application/vnd.oci.image.index.v1+json")

    async def tags(self, repo: str) -> list[str]:
        resp = await self.request("GET", f"/v2/{repo}/tags/list", scope=_scope(repo, "pull"))
        if resp.status_code != 200:
            raise self._fail(resp, f"listing tags of {repo}")
        return list(resp.json().get("tags") or [])


def _scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"
