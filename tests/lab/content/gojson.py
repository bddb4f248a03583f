"""Serialise JSON byte-for-byte as Go's encoding/json does (json.Marshal / json.MarshalIndent).

Contract: `marshal(value)` returns the bytes Go would produce for the equivalent Go value when
dicts are built in Go struct-field order (struct semantics: insertion order kept). Wrap a dict in
`GoMap` for Go map semantics (keys sorted). Strings are escaped as Go does: `<`, `>`, `&`,
U+2028 and U+2029 become \\u escapes (HTML-safe), other non-ASCII stays UTF-8; floats print as
Go's strconv 'g'-like float64 encoding (5.0 -> 5). Signatures are made over these bytes, so
this module is what makes lab payloads identical to cosign's.
"""

from __future__ import annotations

import json
import math
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class GoMap(dict[str, Any]):
    """A dict that marshals with sorted keys, as a Go map[string]T does."""


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _float(value: float) -> str:
    """Go float64 encoding: shortest repr, 'f' format for 1e-6 <= |v| < 1e21, else 'e'."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        text = repr(value)
        if "e" in text:  # Python switches to exponent at 1e16; Go does not until 1e21
            text = format(value, "f")
        return text
    mantissa, exponent = repr(value).split("e")
    sign = exponent[0] if exponent[0] in "+-" else "+"
    digits = exponent.lstrip("+-").lstrip("0") or "0"
    if len(digits) < 2:
        digits = "0" + digits
    return f"{mantissa}e{sign}{digits}"


def _encode(value: Any, indent: str, level: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    nl = "\n" + indent * (level + 1) if indent else ""
    end = "\n" + indent * level if indent else ""
    colon = ": " if indent else ":"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = sorted(value.items()) if isinstance(value, GoMap) else list(value.items())
        parts = [f"{_string(str(k))}{colon}{_encode(v, indent, level + 1)}" for k, v in items]
        return "{" + nl + ("," + nl).join(parts) + end + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        parts = [_encode(v, indent, level + 1) for v in value]
        return "[" + nl + ("," + nl).join(parts) + end + "]"
    raise TypeError(f"cannot marshal {type(value).__name__}")


def marshal(value: Any) -> bytes:
    """Go json.Marshal(value): compact, HTML-escaped, UTF-8."""
    return _encode(value, "", 0).encode()


def marshal_indent(value: Any, indent: str = "  ") -> bytes:
    """Go json.MarshalIndent(value, "", indent)."""
    return _encode(value, indent, 0).encode()
