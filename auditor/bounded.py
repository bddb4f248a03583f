"""Bounded reading and parsing of untrusted input: files (here), YAML and JSON (auditor.judge.parse).

Everything regaudit reads from an audited host, a registry, or a file the user names goes through
these helpers, so that a hostile or broken input ends in one clear `InputError` naming its source
instead of a hang, a RecursionError or unbounded memory:

- files: regular files only (a directory, FIFO, device, symlink loop or missing file is refused
  without blocking), at most `max_bytes` (default `MAX_FILE_BYTES`), readable (permission denied
  is reported as such), UTF-8 when text is asked for;
- YAML: safe tags only, nesting at most `MAX_YAML_DEPTH` levels, and at most `MAX_YAML_NODES` nodes once
  every alias is expanded (the "billion laughs" document of ten levels of nine aliases is refused
  in milliseconds; recursive aliases are refused);
- JSON: at most `max_bytes` of text and `MAX_JSON_DEPTH` levels of nesting.

`InputError` is a `ValueError`: callers turn it into a `parse_error` fact, an `error` result or a
`UsageError` (exit 2), whichever their contract says. The limits are documented in
docs/reliability.md.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from auditor.judge.parse import (
    MAX_FILE_BYTES,
    MAX_JSON_DEPTH,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    InputError,
    decode_text,
    json_depth,
    load_json,
    load_yaml,
    load_yaml_documents,
)

__all__ = [
    "MAX_FILE_BYTES", "MAX_JSON_DEPTH", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "InputError", "decode_text",
    "json_depth", "load_json", "load_json_file", "load_yaml", "load_yaml_documents", "load_yaml_file",
    "oserror_reason", "read_bytes", "read_text",
]


def oserror_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a file"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    return exc.strerror or str(exc)


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> bytes:
    """The bytes of the regular file at `path` (symlinks followed), at most `max_bytes`.

    Never blocks on a FIFO or device: the file is opened non-blocking and refused unless regular.
    Raises InputError("<what> <path>", reason) for every refusal.
    """
    source = f"{what} {os.fspath(path)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(source, oserror_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(source, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(source, "not a regular file")
        if info.st_size > max_bytes:
            raise InputError(source, f"larger than {max_bytes} bytes ({info.st_size})")
        chunks: list[bytes] = []
        total = 0
        while True:
            # At most what is left of the size fstat gave (64 KiB at least, 1 MiB at most): os.read
            # allocates what it is asked for, and a megabyte asked for a small file (and again for
            # its end) can cost a memory mapping and its removal each time (10,000 scan reports).
            chunk = os.read(fd, min(max(info.st_size + 1 - total, 1 << 16), 1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise InputError(source, f"larger than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(source, oserror_reason(exc)) from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """The UTF-8 text of the regular file at `path`, bounded as read_bytes."""
    return decode_text(read_bytes(path, max_bytes=max_bytes, what=what), f"{what} {os.fspath(path)}")


def load_json_file(path: str | os.PathLike[str], *, what: str = "file", max_bytes: int = MAX_FILE_BYTES,
                   max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in the file at `path`, bounded as read_bytes and load_json."""
    data = read_bytes(path, max_bytes=max_bytes, what=what)
    return load_json(data, f"{what} {os.fspath(path)}", max_bytes=max_bytes, max_depth=max_depth)


def load_yaml_file(path: str | os.PathLike[str], *, what: str = "file", max_bytes: int = MAX_FILE_BYTES,
                   max_depth: int = MAX_YAML_DEPTH) -> Any:
    """The YAML document in the file at `path`; InputError for bounds, yaml.YAMLError for syntax."""
    data = read_bytes(path, max_bytes=max_bytes, what=what)
    return load_yaml(data, f"{what} {os.fspath(path)}", max_depth=max_depth)
