"""Large JSON documents written in chunks by the C encoder, laid out for people and diffs.

Contract: `write_json(obj, handle, expand=N)` writes `obj` as JSON to the binary file `handle`:
dicts and lists down to depth N are laid out one member per line (indented by one space per
level); anything deeper is one line from `json.dumps` (the C encoder: Python's `json.dump` with
`indent` runs the pure-Python encoder, about ten times slower on tens of MB). The output parses to
exactly `obj` (json.loads(bytes) == obj) and ends with a newline. Memory holds one chunk at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from io import BytesIO
from typing import Any, BinaryIO

CHUNK = 256 * 1024
CHUNK_ITEMS = 512  # list members encoded per write when they are one line each


def write_json(obj: Any, handle: BinaryIO, *, expand: int = 2, sort_keys: bool = False,
               ensure_ascii: bool = False) -> None:
    """Write `obj` to `handle` (see module contract)."""
    encode = json.JSONEncoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii).encode
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size >= CHUNK:
            flush()

    def flush() -> None:
        nonlocal size
        if parts:
            handle.write("".join(parts).encode("utf-8"))
            parts.clear()
            size = 0

    _write(obj, 0, expand, emit, encode, sort_keys)
    emit("\n")
    flush()


def dumps_bytes(obj: Any, *, expand: int = 2, sort_keys: bool = False, ensure_ascii: bool = False) -> bytes:
    """The bytes `write_json` writes."""
    buffer = BytesIO()
    write_json(obj, buffer, expand=expand, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    return buffer.getvalue()


def _key(key: Any) -> str:
    """A dict key as json.dumps writes it (str, or int/float/bool/None converted)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return repr(key) if isinstance(key, float) else str(key)


def _write(obj: Any, depth: int, expand: int, emit: Callable[[str], None], encode: Callable[[Any], str],
           sort_keys: bool) -> None:
    if depth >= expand or not isinstance(obj, dict | list) or not obj:
        emit(encode(obj))
        return
    pad = "\n" + " " * (depth + 1)
    if isinstance(obj, dict):
        emit("{")
        items = sorted(obj.items()) if sort_keys else obj.items()
        for n, (key, value) in enumerate(items):
            emit(("," if n else "") + pad + encode(_key(key)) + ": ")
            _write(value, depth + 1, expand, emit, encode, sort_keys)
        emit("\n" + " " * depth + "}")
    elif depth + 1 >= expand:  # the members are one line each: encode them without recursing
        emit("[" + pad + ("," + pad).join(encode(value) for value in obj[:CHUNK_ITEMS]))
        for start in range(CHUNK_ITEMS, len(obj), CHUNK_ITEMS):
            emit("," + pad + ("," + pad).join(encode(value) for value in obj[start:start + CHUNK_ITEMS]))
        emit("\n" + " " * depth + "]")
    else:
        emit("[")
        for n, value in enumerate(obj):
            emit(("," if n else "") + pad)
            _write(value, depth + 1, expand, emit, encode, sort_keys)
        emit("\n" + " " * depth + "]")
