"""Redaction of secrets in evidence, applied before anything is judged, saved or reported."""

from __future__ import annotations

import json
import re
from typing import Any

REDACTED = "<redacted>"
SECRET_KEYS = frozenset(
    {
        "secret", "password", "passwd", "secretkey", "accesskey", "token", "access_token",
        "refresh_token", "sessiontoken", "privatekey", "private_key", "authorization",
        "clientsecret", "apikey", "api_key",
    }
)
# Directives in proxy configs whose arguments are credentials.
_CONFIG_SECRET = re.compile(
    r"(?im)^(\s*(?:proxy_set_header\s+Authorization|RequestHeader\s+set\s+Authorization|"
    r"AuthLDAPBindPassword|SSLPassPhraseDialog\s+exec:|auth_basic_user_file_inline)\s+)(\S.*)$"
)


def _key_forms(key: str) -> tuple[str, ...]:
    return tuple({key, key.replace("_", "-")})


# How each secret key and directive can appear in the JSON text of a value (lowercased).
_NEEDLES = tuple(sorted({f'"{form}": ' for key in SECRET_KEYS for form in _key_forms(key)}
                        | {"authorization", "authldapbindpassword", "sslpassphrasedialog",
                           "auth_basic_user_file_inline"}))
_JSON_SAFE = re.compile(r'^[^"\\\x00-\x1f]*$')


def redact(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A copy of `value` with secret-named keys' values replaced and known secrets masked.

    Values whose JSON text names no secret key, no secret-bearing directive and no given secret
    need no change and are returned as they are (tens of thousands of tags: one C-encoded pass
    instead of a Python walk)."""
    if isinstance(value, dict | list) and _clean(value, extra_secrets):
        return value
    return _redact(value, extra_secrets)


def _clean(value: Any, extra_secrets: tuple[str, ...]) -> bool:
    """True when `value` certainly holds nothing redact would change."""
    if any(s and len(s) >= 4 and not _JSON_SAFE.match(s) for s in extra_secrets):
        return False
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return False
    if any(s and len(s) >= 4 and s in text for s in extra_secrets):
        return False
    lowered = text.lower()
    return not any(needle in lowered for needle in _NEEDLES)


def _redact(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            secret_key = isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS
            if secret_key and _is_secret_value(item):
                out[key] = REDACTED
            elif secret_key and isinstance(item, list):  # HTTP header form: {Authorization: [values]}
                out[key] = [REDACTED if _is_secret_value(v) else _redact(v, extra_secrets) for v in item]
            else:
                out[key] = _redact(item, extra_secrets)
        return out
    if isinstance(value, list):
        return [_redact(item, extra_secrets) for item in value]
    if isinstance(value, str):
        text = _CONFIG_SECRET.sub(lambda m: m.group(1) + REDACTED, value) if "\n" in value else value
        for secret in extra_secrets:
            if secret and len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text
    return value


def _is_secret_value(item: Any) -> bool:
    """Strings and numbers are secrets; structures are walked (a `token:` section of a config)."""
    return isinstance(item, str | int | float) and not isinstance(item, bool) and item != ""
