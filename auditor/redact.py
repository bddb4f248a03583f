"""Redaction of secrets in evidence, applied before anything is judged, saved or reported."""

from __future__ import annotations

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


def redact(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A copy of `value` with secret-named keys' values replaced and known secrets masked."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS and _is_secret_value(item):
                out[key] = REDACTED
            else:
                out[key] = redact(item, extra_secrets)
        return out
    if isinstance(value, list):
        return [redact(item, extra_secrets) for item in value]
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
