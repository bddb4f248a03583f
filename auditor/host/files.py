"""File facts for the files.* checks: mode and owner (never content), and htpasswd hash schemes.

Contract: `stat_facts(path)` never reads the file; `htpasswd_entries(text)` returns each entry's
user and hash scheme, never the hash itself. Both are read-only and raise nothing for a missing
or unreadable file (the facts say so).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat

from auditor.model import JSON

BCRYPT_PREFIXES = ("$2y$", "$2a$", "$2b$")
MAX_HTPASSWD_BYTES = 4 * 1024 * 1024


def _owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def _group(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return None


def stat_facts(path: str, source: str = "") -> dict[str, JSON]:
    """Existence, type, mode (octal), owner and group (ids and names) of `path` (links followed)."""
    facts: dict[str, JSON] = {"path": path, "source": source}
    try:
        link = os.lstat(path)
        st = os.stat(path)
    except OSError as exc:
        facts.update({"exists": False, "error": exc.strerror})
        return facts
    facts.update({
        "exists": True,
        "is_file": stat.S_ISREG(st.st_mode),
        "is_dir": stat.S_ISDIR(st.st_mode),
        "symlink": stat.S_ISLNK(link.st_mode),
        "realpath": os.path.realpath(path) if stat.S_ISLNK(link.st_mode) else None,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "owner": _owner(st.st_uid),
        "group": _group(st.st_gid),
        "size": st.st_size,
    })
    return facts


def hash_scheme(hashed: str) -> str:
    """The scheme of one htpasswd hash: bcrypt, apr1-md5, sha1, sha256-crypt, sha512-crypt,
    or crypt/plain (anything else: DES crypt, or a plaintext password Apache accepts on some OSes)."""
    if hashed.startswith(BCRYPT_PREFIXES):
        return "bcrypt"
    if hashed.startswith("$apr1$"):
        return "apr1-md5"
    if hashed.startswith("{SHA}"):
        return "sha1"
    if hashed.startswith("$5$"):
        return "sha256-crypt"
    if hashed.startswith("$6$"):
        return "sha512-crypt"
    if hashed.startswith("$1$"):
        return "md5-crypt"
    return "crypt-or-plain"


def htpasswd_entries(text: str) -> list[dict[str, JSON]]:
    """[{user, line, scheme}] for every `user:hash` line (blank lines and comments skipped)."""
    out: list[dict[str, JSON]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, sep, hashed = stripped.partition(":")
        out.append({"user": user, "line": number, "scheme": hash_scheme(hashed) if sep else "malformed"})
    return out


def htpasswd_facts(path: str, source: str = "") -> dict[str, JSON]:
    """stat facts plus the entries' schemes (the hashes themselves are never kept)."""
    facts = stat_facts(path, source)
    if not facts.get("exists") or not facts.get("is_file"):
        return facts
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_HTPASSWD_BYTES)
    except OSError as exc:
        facts["read_error"] = exc.strerror
        return facts
    facts["entries"] = htpasswd_entries(raw.decode("utf-8", errors="replace"))
    return facts
