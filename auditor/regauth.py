"""Registry authentication as a client sees it: challenges, credential policy, Basic and Bearer.

Contracts:
- :func:`parse_www_authenticate` parses RFC 7235 challenges: several per header and several
  headers, quoted strings with escapes and commas, token68 forms. Scheme and parameter names are
  lower-cased; it never raises on malformed input (it keeps what it could read).
- Credentials go only to the target's own origin over https (or http on a loopback host), and to
  a Bearer realm only when that realm is https and on the target's host or in its parent domain
  (auth.example.com for registry.example.com). Off-origin redirect hops never carry them.
- :class:`RegistrySession` performs authenticated requests; every network failure is a
  ProbeError whose text holds no credential. Bearer tokens are kept in memory only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from auditor import bounded
from auditor.credentials import Credentials
from auditor.errors import ProbeError
from auditor.httpclient import BoundedResponse, bounded_request, same_origin
from auditor.model import JSON

TOKEN_MAX_BODY = 256 * 1024
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:({_TOKEN})|\"((?:[^\"\\]|\\.)*)\")\s*(?:,|$)", re.S)
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)")
_SCHEME = re.compile(rf"[\s,]*({_TOKEN})(?:\s+|(?=,)|$)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: scheme (lower case), parameters (lower-case names)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    def to_json(self) -> dict[str, JSON]:
        return {"scheme": self.scheme, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Challenge:
        return cls(str(data.get("scheme", "")).lower(), dict(data.get("params") or {}))


def parse_www_authenticate(values: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given WWW-Authenticate header values, in order."""
    found: list[Challenge] = []
    for value in values:
        found += _parse_one(value)
    return found


def _parse_one(text: str) -> list[Challenge]:
    out: list[Challenge] = []
    pos = 0
    while pos < len(text):
        m = _SCHEME.match(text, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        token68 = None
        first = True
        while pos < len(text):
            pm = _PARAM.match(text, pos)
            if pm:
                value = pm.group(2) if pm.group(2) is not None else re.sub(r"\\(.)", r"\1", pm.group(3))
                params.setdefault(pm.group(1).lower(), value)
                pos = pm.end()
                first = False
                continue
            if first:
                tm = _TOKEN68.match(text, pos)
                if tm:
                    token68 = tm.group(1)
                    pos = tm.end()
            break
        out.append(Challenge(scheme, params, token68))
        if pos < len(text) and not _SCHEME.match(text, pos):
            # Unreadable rest: skip to the next comma so one bad piece does not hide the others.
            nxt = text.find(",", pos)
            if nxt < 0:
                break
            pos = nxt + 1
    return out


def challenges_of(response: BoundedResponse) -> list[Challenge]:
    return parse_www_authenticate(response.headers.get_list("www-authenticate"))


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def credentials_allowed(url: str, target_url: str) -> tuple[bool, str]:
    """May credentials go to `url`? Only the target's origin over https, or loopback http."""
    parts = urlsplit(url)
    if not same_origin(url, target_url):
        return False, f"{parts.scheme}://{parts.netloc} is not the target's origin"
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return True, ""
    return False, "plain http to a non-loopback host"


def realm_allowed(realm: str, target_url: str) -> tuple[bool, str]:
    """May credentials go to a Bearer realm? https, on the target's host or in its parent domain."""
    parts, target = urlsplit(realm), urlsplit(target_url)
    host, target_host = (parts.hostname or "").lower(), (target.hostname or "").lower()
    if parts.scheme != "https":
        if parts.scheme == "http" and is_loopback(host) and is_loopback(target_host):
            return True, ""
        return False, f"the token realm {_origin(realm)} is not https"
    if host == target_host:
        return True, ""
    if _parent(host) and _parent(host) == _parent(target_host):
        return True, ""
    return False, f"the token realm {_origin(realm)} is outside the target's domain"


def _parent(host: str) -> str | None:
    """The parent domain, when it still has at least two labels (never a bare TLD)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return ".".join(labels[1:]) if len(labels) >= 3 else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def decode_jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, NOT verified (facts about what a token service granted); None if unreadable."""
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(pieces[1] + "=" * (-len(pieces[1]) % 4))
        claims = bounded.load_json(raw, "token claims")
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def granted_actions(claims: dict[str, Any] | None, repository: str) -> list[str]:
    """Actions a token's `access` claim grants on a repository (wildcards honoured)."""
    if not claims:
        return []
    actions: set[str] = set()
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict) or entry.get("type") != "repository":
            continue
        name = str(entry.get("name", ""))
        if name == repository or name == "*" or (name.endswith("/*") and repository.startswith(name[:-1])):
            actions |= {str(a) for a in entry.get("actions") or []}
    return sorted(actions)


class BearerAuth(httpx.Auth):
    """Adds a Bearer token; an httpx.Auth so follow_redirects drops it on off-origin hops."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


@dataclass(frozen=True)
class TokenAnswer:
    """A token endpoint's answer. `token_value` is in memory only: never put it in evidence."""

    status: int
    token_issued: bool
    token_value: str | None
    claims: dict[str, Any] | None
    error: str | None = None

    def facts(self, repository: str | None = None) -> dict[str, JSON]:
        out: dict[str, JSON] = {"status": self.status, "token_issued": self.token_issued}
        if self.error:
            out["error"] = self.error
        if self.claims is not None:
            out["audience"] = self.claims.get("aud")
            out["issuer"] = self.claims.get("iss")
            out["subject"] = self.claims.get("sub")
            out["access_granted"] = self.claims.get("access")
            if repository is not None:
                out["actions_granted"] = granted_actions(self.claims, repository)
        return out


async def request_token(
    client: httpx.AsyncClient,
    realm: str,
    service: str | None,
    scopes: Iterable[str],
    auth: httpx.Auth | None,
    total_timeout: float,
) -> TokenAnswer:
    """GET the realm for a token (no redirects followed); raises ProbeError on network failure."""
    params: list[tuple[str, str | int | float | bool | None]] = []
    if service:
        params.append(("service", service))
    params += [("scope", s) for s in scopes]
    url = str(httpx.URL(realm).copy_merge_params(params))
    response = await bounded_request(client, "GET", url, max_body=TOKEN_MAX_BODY, auth=auth,
                                     total_timeout=total_timeout)
    if response.status_code != 200:
        return TokenAnswer(response.status_code, False, None, None)
    try:
        body = bounded.load_json(response.body, "token answer")
    except ValueError:
        return TokenAnswer(200, False, None, None, "answer is not JSON")
    value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        return TokenAnswer(200, False, None, None, "answer holds no token")
    return TokenAnswer(200, True, value, decode_jwt_claims(value))


class RegistrySession:
    """Requests to one registry with its credentials: Basic, Bearer (token per scope) or none."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        credentials: Credentials | None,
        timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.challenge: Challenge | None = None
        self.open = False
        self._tokens: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.base_url + path

    def _basic(self) -> httpx.Auth:
        assert self.credentials is not None
        return httpx.BasicAuth(self.credentials.username, self.credentials.password.reveal())

    async def login(self) -> None:
        """Learn how /v2/ authenticates and check the credentials; ProbeError when they fail."""
        allowed, why = credentials_allowed(self.url("/v2/"), self.base_url)
        if not allowed:
            raise ProbeError(f"credentials not sent: {why}")
        first = await bounded_request(self.client, "GET", self.url("/v2/"), max_body=65536,
                                      total_timeout=self.timeout)
        if first.status_code == 200:
            self.open = True
            return
        if first.status_code != 401:
            raise ProbeError(f"GET /v2/ answered {first.status_code}, not 200 or a 401 challenge")
        found = challenges_of(first)
        bearer = next((c for c in found if c.scheme == "bearer"), None)
        basic = next((c for c in found if c.scheme == "basic"), None)
        self.challenge = bearer or basic
        if self.challenge is None:
            raise ProbeError("GET /v2/ answered 401 without a Basic or Bearer challenge")
        if self.credentials is None:
            raise ProbeError("the registry demands authentication and no credentials were given")
        check = await self.get("/v2/", scope=None)
        if check.status_code != 200:
            raise ProbeError(f"authentication failed: GET /v2/ with credentials answered {check.status_code}")

    async def _auth_for(self, scope: str | None) -> httpx.Auth | None:
        if self.open or self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            return self._basic()
        key = scope or ""
        if key not in self._tokens:
            realm = self.challenge.params.get("realm", "")
            allowed, why = realm_allowed(realm, self.base_url)
            if not allowed:
                raise ProbeError(f"credentials not sent: {why}")
            answer = await request_token(self.client, realm, self.challenge.params.get("service"),
                                         [scope] if scope else [], self._basic(), self.timeout)
            if not answer.token_issued or answer.token_value is None:
                raise ProbeError(f"the token service refused the credentials (HTTP {answer.status}"
                                 f"{', ' + answer.error if answer.error else ''})")
            self._tokens[key] = answer.token_value
        return BearerAuth(self._tokens[key])

    async def get(self, path: str, scope: str | None, headers: dict[str, str] | None = None,
                  max_body: int = 4 * 1024 * 1024) -> BoundedResponse:
        """An authenticated GET of `path` on the registry's origin; redirects are not followed."""
        auth = await self._auth_for(scope)
        return await bounded_request(self.client, "GET", self.url(path), headers=headers, auth=auth,
                                     max_body=max_body, total_timeout=self.timeout)


def repository_scope(repository: str, actions: str = "pull") -> str:
    return f"repository:{repository}:{actions}"


CATALOG_SCOPE = "registry:catalog:*"


async def find_reference(session: RegistrySession, max_repositories: int = 20) -> tuple[str, str] | None:
    """A (repository, tag) from an authenticated walk of the catalog, preferring non-signature tags."""
    response = await session.get("/v2/_catalog?n=100", scope=CATALOG_SCOPE, max_body=1024 * 1024)
    if response.status_code != 200:
        raise ProbeError(f"GET /v2/_catalog with credentials answered {response.status_code}")
    try:
        repositories = bounded.load_json(response.body, "catalog").get("repositories") or []
    except (ValueError, AttributeError):
        raise ProbeError("GET /v2/_catalog answered something that is not a catalog") from None
    from auditor.judge.manifests import is_repository_name, is_tag_name

    for repository in [r for r in repositories if is_repository_name(r)][:max_repositories]:
        tags_response = await session.get(f"/v2/{repository}/tags/list", scope=repository_scope(repository),
                                          max_body=1024 * 1024)
        if tags_response.status_code != 200:
            continue
        try:
            listed = bounded.load_json(tags_response.body, "tags list").get("tags") or []
            tags = [t for t in listed if is_tag_name(t)]
        except (ValueError, AttributeError):
            continue
        plain = [t for t in tags if not t.startswith("sha256-")]
        if plain or tags:
            return repository, (plain or tags)[0]
    return None
