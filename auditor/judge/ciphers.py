"""OpenSSL / mod_ssl cipher strings judged against the suite tables (pure).

Contract: `explicit_ciphers(text)` returns the suites of a cipher string that only lists concrete
suite names (OpenSSL or IANA spelling), else None (keywords such as HIGH or !aNULL need OpenSSL's
expansion, which only the live handshake shows); `canonical_suite` gives a suite's IANA name;
`with_flags` names a suite with its weaknesses.
"""

from __future__ import annotations

from auditor.judge.suites import lookup

CIPHER_KEYWORD_CHARS = "!+-@"


def canonical_suite(name: str) -> str:
    """IANA name of a suite given in OpenSSL or IANA spelling (unknown names stay as they are)."""
    suite = lookup(name)
    return suite.name if suite is not None else name


def with_flags(name: str) -> str:
    suite = lookup(name)
    flags = sorted(f for f in (suite.flags if suite else ()) if f in ("CBC", "3DES", "RC4", "NULL", "EXPORT"))
    if suite is not None and not suite.forward_secret:
        flags.append("no forward secrecy")
    return f"{name} ({', '.join(flags)})" if flags else name


def explicit_ciphers(text: str) -> list[str] | None:
    """The suites of a cipher string that only lists concrete suite names, else None."""
    tokens = [t for t in text.replace(",", ":").replace(" ", ":").split(":") if t]
    if not tokens or any(t[0] in CIPHER_KEYWORD_CHARS for t in tokens):
        return None
    if all(lookup(t) is not None for t in tokens):
        return tokens
    return None
