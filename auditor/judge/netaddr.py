"""Listen addresses as configs write them ("127.0.0.1:5000", ":5000", "[::1]:5001", "localhost:5000")."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class ListenAddr:
    host: str
    port: int | None

    @property
    def all_interfaces(self) -> bool:
        return self.host in ("", "0.0.0.0", "::", "*", "[::]")

    @property
    def loopback(self) -> bool:
        if self.host.lower() in ("localhost", "localhost.", "ip6-localhost"):
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def parse_listen(text: str) -> ListenAddr | None:
    """Split host and port; None when it is not of the form host:port, :port or [v6]:port."""
    raw = text.strip()
    if not raw:
        return None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            return None
    elif raw.count(":") > 1:
        try:
            ipaddress.IPv6Address(raw)
            return ListenAddr(raw, None)
        except ValueError:
            return None
    else:
        host, _, port_text = raw.rpartition(":") if ":" in raw else (raw, "", "")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    return ListenAddr(host, port)
