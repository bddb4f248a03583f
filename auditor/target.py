"""What is audited: the registry's public URL, the inside vantage, and explicit paths."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from auditor.errors import UsageError
from auditor.model import JSON, Vantage

# Explicit path overrides the CLI accepts; inside-mode discovery fills in what is not given.
PATH_KEYS = (
    "registry_config",
    "nginx_config",
    "apache_config",
    "scan_dir",
    "fstab",
    "ca_bundle",
    "manifests_dir",
    "trusted_root",
    "storage_root",
    "htpasswd",
    "tls_key",
)


@dataclass(frozen=True)
class Target:
    """An audit target. `url` is the registry's public base URL (scheme://host[:port]) or None."""

    url: str | None = None
    inside: bool = False
    paths: Mapping[str, str] = field(default_factory=dict)
    cosign_keys: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        return urlsplit(self.url).hostname if self.url else None

    @property
    def scheme(self) -> str | None:
        return urlsplit(self.url).scheme if self.url else None

    @property
    def port(self) -> int | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def path(self, key: str) -> str | None:
        """An explicit path override, or None (then discovery or the default applies)."""
        return self.paths.get(key)

    def vantages(self) -> frozenset[Vantage]:
        """The vantages this target makes possible: outside and content need a URL, inside --inside.

        Content is also reachable from the registry host's storage in inside mode.
        """
        found: set[Vantage] = set()
        if self.url:
            found |= {Vantage.OUTSIDE, Vantage.CONTENT}
        if self.inside:
            found |= {Vantage.INSIDE, Vantage.CONTENT}
        return frozenset(found)

    def describe(self) -> dict[str, JSON]:
        """A JSON description for reports and evidence (it never holds credentials)."""
        return {
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "inside": self.inside,
            "paths": dict(sorted(self.paths.items())),
            "cosign_keys": list(self.cosign_keys),
            "options": dict(sorted(self.options.items())),
        }

    @classmethod
    def from_description(cls, data: Mapping[str, JSON]) -> Target:
        return cls(
            url=data.get("url"),
            inside=bool(data.get("inside")),
            paths=dict(data.get("paths") or {}),
            cosign_keys=tuple(data.get("cosign_keys") or ()),
            options=dict(data.get("options") or {}),
        )


def parse_registry_url(text: str) -> str:
    """Normalise a registry URL to scheme://host[:port]; raise UsageError when it is unusable.

    Credentials in the URL are refused: they would end up in process arguments and logs.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad registry URL {text!r}: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise UsageError(f"bad registry URL {text!r}: scheme must be https (or http), not {parts.scheme!r}")
    if not parts.hostname:
        raise UsageError(f"bad registry URL {text!r}: no host name")
    if parts.username or parts.password:
        raise UsageError(
            "bad registry URL: credentials in the URL are refused (they leak into process lists); "
            "use REGAUDIT_USERNAME/REGAUDIT_PASSWORD, --password-file or Docker's config.json"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"bad registry URL {text!r}: give the base URL only (no path such as /v2/)")
    host = parts.hostname
    if not _valid_host(host):
        raise UsageError(f"bad registry URL {text!r}: {host!r} is not a valid host name or address")
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if parts.scheme == "https" else 80
    suffix = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme}://{shown_host}{suffix}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    )
