"""Read the lab description (lab.json) the infra side writes.

Contract: `load(path)` returns a `LabConfig` with the fields content generation needs; missing
optional sections default sensibly (scan_dir under base_dir, cosign keys under base_dir/cosign).
`registry_url()` turns registry.listen (`127.0.0.1:5000`, `:5000`, `10.0.0.10:5000`,
`[fd00::10]:5000`, a URL, or a list of those) into the http URL to push to; a wildcard listen is
reached on loopback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILES = ("hardened", "weak", "token", "firewall")


@dataclass
class CosignKeys:
    public_key: Path
    private_key: Path
    untrusted_public_key: Path
    untrusted_private_key: Path


@dataclass
class LabConfig:
    path: Path
    variant: str
    base_dir: Path
    hostname: str
    listen: str
    scan_dir: Path
    cosign: CosignKeys
    content_profile: str
    token: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def registry_url(self) -> str:
        return listen_to_url(self.listen)

    @property
    def content_json(self) -> Path:
        return self.base_dir / "content.json"


def listen_to_url(listen: str) -> str:
    """http URL for a registry listen address (a wildcard host means loopback)."""
    listen = listen.strip()
    if listen.startswith(("http://", "https://")):
        return listen.rstrip("/")
    if listen.startswith("["):
        host, _, port = listen[1:].partition("]:")
        host = "::1" if host in ("::", "") else host
        return f"http://[{host}]:{port or '5000'}"
    host, _, port = listen.rpartition(":")
    if not host or host in ("0.0.0.0", "*"):
        host = "127.0.0.1"
    return f"http://{host}:{port or '5000'}"


def load(path: str | Path) -> LabConfig:
    """Parse lab.json; ValueError names the first missing required key."""
    p = Path(path)
    raw = json.loads(p.read_text())
    for key in ("base_dir", "registry"):
        if key not in raw:
            raise ValueError(f"{p}: missing required key {key!r}")
    base = Path(raw["base_dir"])
    listen = raw["registry"].get("listen", "127.0.0.1:5000")
    if isinstance(listen, list):
        listen = listen[0]
    cos = raw.get("cosign") or {}
    keydir = base / "cosign"
    keys = CosignKeys(
        public_key=Path(cos.get("public_key") or keydir / "cosign.pub"),
        private_key=Path(cos.get("private_key") or keydir / "cosign.key"),
        untrusted_public_key=Path(cos.get("untrusted_public_key") or keydir / "untrusted.pub"),
        untrusted_private_key=Path(cos.get("untrusted_private_key") or keydir / "untrusted.key"),
    )
    profile = raw.get("content_profile") or raw.get("variant") or "hardened"
    if profile not in PROFILES:
        raise ValueError(f"{p}: content_profile {profile!r} is not one of {', '.join(PROFILES)}")
    return LabConfig(
        path=p,
        variant=str(raw.get("variant", profile)),
        base_dir=base,
        hostname=str(raw.get("hostname") or "registry.regaudit.test"),
        listen=str(listen),
        scan_dir=Path(raw.get("scan_dir") or base / "scans"),
        cosign=keys,
        content_profile=profile,
        token=dict(raw.get("token") or {}),
        tls=dict(raw.get("tls") or {}),
        raw=raw,
    )
