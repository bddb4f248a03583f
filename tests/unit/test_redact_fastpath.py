"""redact's fast path (values whose JSON names no secret are returned as they are) changes nothing:
for random documents salted with secret keys, directives and the password, it equals the full walk."""

from __future__ import annotations

import random

import pytest

from auditor.redact import REDACTED, _redact, redact

SALT_KEYS = ["token", "Access-Token", "PASSWORD", "clientSecret", "secret-key", "tokens", "token_requests",
             "name", "digest"]
SALT_STRINGS = ["plain", "proxy_set_header Authorization Basic abc\nnext", "hunter2-pass", "x\"y\\z",
                "AuthLDAPBindPassword s3cr3t\n", "sha256:" + "a" * 64, "é☃"]


def _doc(rng: random.Random, depth: int = 0) -> object:
    if depth > 3 or rng.random() < 0.3:
        return rng.choice([*SALT_STRINGS, 1, 2.5, True, None, ""])
    if rng.random() < 0.5:
        return [_doc(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(SALT_KEYS): _doc(rng, depth + 1) for _ in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(300))
def test_fast_path_equals_full_walk(seed: int) -> None:
    rng = random.Random(seed)
    doc = _doc(rng)
    secrets = rng.choice([(), ("hunter2-pass",), ("x\"y\\z",), ("abc",)])
    assert redact(doc, secrets) == _redact(doc, secrets)


def test_clean_values_are_not_copied_and_dirty_ones_are_redacted() -> None:
    clean = {"tags": [{"repo": "a", "digest": "sha256:" + "0" * 64, "token_requests": 3}]}
    assert redact(clean) is clean
    dirty = {"tags": [{"repo": "a", "auth": {"Token": "abcd"}}]}
    assert redact(dirty) == {"tags": [{"repo": "a", "auth": {"Token": REDACTED}}]}
    assert redact({"log": "user hunter2-pass"}, ("hunter2-pass",)) == {"log": f"user {REDACTED}"}
