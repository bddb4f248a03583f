"""WWW-Authenticate parsing (RFC 7235) and the credential policy of auditor.regauth."""

from __future__ import annotations

import base64
import json

import pytest

from auditor.regauth import (
    credentials_allowed,
    decode_jwt_claims,
    granted_actions,
    parse_www_authenticate,
    realm_allowed,
)


def test_distribution_bearer_challenge_with_commas_in_quoted_scope() -> None:
    header = ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
              'scope="repository:a/b:pull,push",error="insufficient_scope"')
    [challenge] = parse_www_authenticate([header])
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                                "scope": "repository:a/b:pull,push", "error": "insufficient_scope"}


def test_several_challenges_in_one_header_and_across_headers() -> None:
    found = parse_www_authenticate([
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        "Negotiate a87421000492aa874209af8bc028==",
        'BASIC Realm="upper"',
    ])
    assert [c.scheme for c in found] == ["newauth", "basic", "negotiate", "basic"]
    assert found[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert found[1].params == {"realm": "simple"}
    assert found[2].token68 == "a87421000492aa874209af8bc028=="
    assert found[3].params == {"realm": "upper"}


def test_bare_scheme_spaces_around_equals_and_empty_values() -> None:
    found = parse_www_authenticate(['Basic', 'Bearer realm = "r" , service=""', ""])
    assert [(c.scheme, c.params) for c in found] == [("basic", {}), ("bearer", {"realm": "r", "service": ""})]


@pytest.mark.parametrize("junk", ['"unterminated', "Bearer realm=\"x", ",,,", "=== =", "Bearer realm=@@@, Basic"])
def test_malformed_headers_never_raise(junk: str) -> None:
    for challenge in parse_www_authenticate([junk]):
        assert challenge.scheme


def test_malformed_piece_does_not_hide_a_later_challenge() -> None:
    found = parse_www_authenticate(['Bearer realm=@@@, Basic realm="ok"'])
    assert ("basic", {"realm": "ok"}) in [(c.scheme, c.params) for c in found]


@pytest.mark.parametrize(("url", "ok"), [
    ("https://registry.example.com/v2/", True),
    ("http://registry.example.com/v2/", False),          # downgrade: another origin, and plaintext
    ("https://evil.example.net/v2/", False),
    ("https://registry.example.com:8443/v2/", False),
])
def test_credentials_only_to_the_targets_https_origin(url: str, ok: bool) -> None:
    assert credentials_allowed(url, "https://registry.example.com")[0] is ok


def test_loopback_http_target_may_get_credentials_but_not_a_lan_http_one() -> None:
    assert credentials_allowed("http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000")[0]
    assert credentials_allowed("http://[::1]:5000/v2/", "http://[::1]:5000")[0]
    allowed, why = credentials_allowed("http://10.0.0.10:5000/v2/", "http://10.0.0.10:5000")
    assert not allowed and "plain http" in why


@pytest.mark.parametrize(("realm", "ok"), [
    ("https://auth.example.com/token", True),            # same parent domain
    ("https://registry.example.com/token", True),        # same host
    ("http://auth.example.com/token", False),            # plaintext
    ("https://auth.attacker.net/token", False),          # another domain
    ("https://example.com.attacker.net/token", False),
    ("https://10.0.0.1/token", False),
])
def test_realm_policy(realm: str, ok: bool) -> None:
    assert realm_allowed(realm, "https://registry.example.com")[0] is ok


def test_two_label_target_does_not_trust_the_whole_tld() -> None:
    assert not realm_allowed("https://other.com/token", "https://example.com")[0]


def _jwt(claims: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{body}.c2ln"


def test_jwt_claims_and_granted_actions_with_wildcards() -> None:
    claims = decode_jwt_claims(_jwt({"aud": "svc", "access": [
        {"type": "repository", "name": "team/*", "actions": ["pull", "push"]},
        {"type": "repository", "name": "other", "actions": ["delete"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]}))
    assert claims is not None and claims["aud"] == "svc"
    assert granted_actions(claims, "team/app") == ["pull", "push"]
    assert granted_actions(claims, "other") == ["delete"]
    assert granted_actions(claims, "teamx/app") == []
    assert decode_jwt_claims("not-a-jwt") is None
    assert decode_jwt_claims("a.!!!.c") is None
