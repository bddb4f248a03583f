"""Registry authentication for the walker: Basic, or the Bearer token flow with per-scope tokens.

Contract: `RegistryAuth(client, credentials, base_url)` answers `await headers(scope)` with the
Authorization header to send (empty until the registry challenged once), and
`await on_challenge(www_authenticate, scope)` after a 401: it learns the scheme (Basic or Bearer
realm/service), fetches a token for `scope` when Bearer, and returns True when a retry can
succeed. Tokens are cached per scope until `expires_in` (default 60 s) minus a margin. Credentials
are only sent to the registry's origin over https (or loopback) and to an https (or loopback)
token realm; they never appear in errors.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx

from auditor import bounded
from auditor.credentials import Credentials
from auditor.errors import ProbeError
from auditor.httpclient import bounded_request

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
LOOPBACK = ("localhost", "127.0.0.1", "::1")
EXPIRY_MARGIN = 5.0


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header (`Bearer realm="..",service=".."`)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        params[match.group(1).lower()] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
    return Challenge(scheme.lower(), params)


def realm_allowed(realm: str, base_url: str) -> bool:
    """Credentials go to a realm on the registry's host or in its parent domain (auth.example.com
    for registry.example.com), or on loopback; never to an unrelated host the registry names."""
    realm_host = (urlsplit(realm).hostname or "").lower().rstrip(".")
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    if realm_host == host or realm_host in LOOPBACK:
        return True
    parent = host.split(".", 1)[1] if "." in host else ""
    return bool(parent) and "." in parent and (realm_host == parent or realm_host.endswith("." + parent))


def _secure(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.hostname or "") in LOOPBACK


class RegistryAuth:
    """Authorization headers per scope, learned from the registry's challenge."""

    def __init__(self, client: httpx.AsyncClient, credentials: Credentials | None, base_url: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.credentials = credentials
        self.base_url = base_url
        self.clock = clock
        self.scheme = ""  # "", "basic", "bearer"
        self.realm = ""
        self.service = ""
        self.token_requests = 0
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _basic(self) -> str:
        assert self.credentials is not None
        raw = f"{self.credentials.username}:{self.credentials.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def headers(self, scope: str) -> dict[str, str]:
        """The Authorization header for a request needing `scope` (may fetch a token)."""
        if self.scheme == "basic" and self.credentials is not None and _secure(self.base_url):
            return {"Authorization": self._basic()}
        if self.scheme == "bearer":
            token = await self._token(scope)
            return {"Authorization": f"Bearer {token}"} if token else {}
        return {}

    async def on_challenge(self, header: str, scope: str, had_auth: bool) -> bool:
        """React to a 401; True when retrying with (new) credentials may succeed."""
        challenge = parse_challenge(header)
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            if self.credentials is None or (had_auth and self.scheme == "basic"):
                return False
            if not _secure(self.base_url):
                raise ProbeError("the registry asks for Basic credentials over plain http; refused")
            self.scheme = "basic"
            return True
        if challenge.scheme == "bearer":
            realm = challenge.params.get("realm", "")
            if not realm:
                raise ProbeError("Bearer challenge without a realm")
            self.scheme, self.realm = "bearer", realm
            self.service = challenge.params.get("service", "")
            wanted = challenge.params.get("scope") or scope
            if had_auth:
                if scope in self._tokens:
                    self._tokens.pop(scope, None)
                    return await self._token(wanted, key=scope) != ""
                return False
            return await self._token(wanted, key=scope) != ""
        return False

    async def _token(self, scope: str, key: str | None = None) -> str:
        key = key or scope
        cached = self._tokens.get(key)
        if cached and cached[1] > self.clock():
            return cached[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > self.clock():
                return cached[0]
            token, lifetime = await self._fetch_token(scope)
            self._tokens[key] = (token, self.clock() + max(1.0, lifetime - EXPIRY_MARGIN))
            return token

    async def _fetch_token(self, scope: str) -> tuple[str, float]:
        query = {"service": self.service} if self.service else {}
        if scope:
            query["scope"] = scope
        url = self.realm + ("&" if "?" in self.realm else "?") + urlencode(query)
        headers: dict[str, str] = {}
        if self.credentials is not None:
            if not _secure(self.realm):
                raise ProbeError(f"token realm {urlsplit(self.realm).netloc} is not https: credentials not sent")
            if not realm_allowed(self.realm, self.base_url):
                raise ProbeError(f"token realm {urlsplit(self.realm).hostname} is neither the registry's host nor "
                                 "in its parent domain: credentials not sent")
            headers["Authorization"] = self._basic()
        self.token_requests += 1
        response = await bounded_request(self.client, "GET", url, headers=headers, max_body=1024 * 1024)
        if response.status_code != 200:
            raise ProbeError(f"token service {urlsplit(self.realm).netloc} answered {response.status_code} "
                             f"for scope {scope!r}" + (" (wrong credentials?)" if response.status_code == 401 else ""))
        try:

            body = bounded.load_json(response.body, "token answer")
            token = str(body.get("token") or body.get("access_token") or "")
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise ProbeError("token service answered something that is not a token JSON") from None
        if not token:
            raise ProbeError("token service answered no token")
        return token, lifetime
