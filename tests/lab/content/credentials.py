"""Credentials the content tools use to push, read from files named in lab.json (never argv).

Contract: a credentials file is JSON `{"username": ..., "password": ...}` (mode 0600).
`push_credentials(lab)` returns (username, password, verify) for pushing: in the token variant
the push user's file (lab.json token.credentials.push) and the CA that verifies the token
service (token.ca, tls.ca, tls.ca_cert or ca); otherwise (None, None, True): the basic variants'
registry has no auth of its own on its loopback listener.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .labconf import LabConfig


def write_credentials(path: Path, username: str, password: str) -> None:
    """Write a 0600 credentials file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"username": username, "password": password}, fh)
        fh.write("\n")


def read_credentials(path: str | Path) -> tuple[str, str]:
    body = json.loads(Path(path).read_text())
    return str(body["username"]), str(body["password"])


def _ca(lab: LabConfig) -> Any:
    for section in (lab.token, lab.tls, lab.raw):
        for key in ("ca", "ca_cert", "ca_file", "cafile"):
            value = section.get(key)
            if isinstance(value, str) and value:
                return value
    return True


def push_credentials(lab: LabConfig) -> tuple[str | None, str | None, Any]:
    if lab.content_profile != "token":
        return None, None, True
    creds = lab.token.get("credentials") or {}
    path = creds.get("push") if isinstance(creds, dict) else None
    if not path:
        raise ValueError(f"{lab.path}: token.credentials.push (push user's credentials file) is missing")
    user, password = read_credentials(path)
    return user, password, _ca(lab)
