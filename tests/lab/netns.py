"""Network namespaces: the lab's topology, and running commands inside a namespace.

Contract: `create(variant)` builds a switch namespace holding a bridge and one namespace per role
joined to it by veth pairs created directly inside the namespaces (nothing is added to the root
network namespace); `destroy(variant)` removes them and their /etc/netns entries, tolerating
partial state. `run_in(ns, argv)` runs a command in a namespace via `ip netns exec`, which also
bind-mounts /etc/netns/<ns>/{hosts,resolv.conf}. Secrets go through `env` or `input`, never argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .variants import (
    ADDRESSES,
    AUTH_HOSTNAME,
    DOMAIN,
    HOSTNAME,
    ROLES,
    V4_PREFIX,
    V6_PREFIX,
    Variant,
)

NETNS_ETC = Path("/etc/netns")
BRIDGE = "br0"


class LabError(RuntimeError):
    """A lab operation failed; the message says which command and why."""


def sh(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
       input: str | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv (no shell), capture text output; LabError with stderr when check and rc != 0."""
    full_env = {**os.environ, **env} if env else None
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            input=input, env=full_env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timeout after {timeout}s: {' '.join(argv)}") from exc
    if check and cp.returncode != 0:
        raise LabError(f"command failed (rc={cp.returncode}): {' '.join(argv)}: {cp.stderr.strip()}")
    return cp


def run_in(ns: str, argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60.0,
           *, check: bool = False, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv inside network namespace `ns` (with its /etc/netns files); returns the result."""
    return sh(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout, input=input, env=env)


def available() -> str | None:
    """None when this process can build labs, else the reason it cannot (not root, no ip netns)."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mounts, iptables)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"rgprobe-{os.getpid()}"
    cp = sh(["ip", "netns", "add", probe], check=False)
    if cp.returncode != 0:
        return f"`ip netns add` does not work here: {cp.stderr.strip()}"
    sh(["ip", "netns", "del", probe], check=False)
    return None


def existing() -> set[str]:
    """Names of the network namespaces that exist now."""
    out = sh(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def hosts_file() -> str:
    """The /etc/hosts every lab namespace sees."""
    v4, v6 = ADDRESSES["registry"]
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{v4}\t{HOSTNAME} {AUTH_HOSTNAME}", f"{v6}\t{HOSTNAME} {AUTH_HOSTNAME}"]
    for role, (a4, a6) in ADDRESSES.items():
        lines += [f"{a4}\t{role}.{DOMAIN}", f"{a6}\t{role}.{DOMAIN}"]
    return "\n".join(lines) + "\n"


def create(variant: Variant) -> dict[str, str]:
    """Build the topology for `variant`; returns role -> namespace name (plus 'switch')."""
    switch = variant.ns("switch")
    names = {role: variant.ns(role) for role in ROLES}
    for ns in (switch, *names.values()):
        sh(["ip", "netns", "add", ns])
        # No DAD: IPv6 addresses are usable at once (also set nodad per address below).
        run_in(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0"], check=True)
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
    sh(["ip", "-n", switch, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
        "mcast_snooping", "0"])
    sh(["ip", "-n", switch, "link", "set", BRIDGE, "up"])
    for role, ns in names.items():
        port = f"p-{role}"
        sh(["ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        sh(["ip", "-n", switch, "link", "set", port, "master", BRIDGE, "up"])
        v4, v6 = ADDRESSES[role]
        sh(["ip", "-n", ns, "addr", "add", f"{v4}/{V4_PREFIX}", "dev", "eth0"])
        sh(["ip", "-n", ns, "addr", "add", f"{v6}/{V6_PREFIX}", "dev", "eth0", "nodad"])
        sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts_file())
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    return {**names, "switch": switch}


def namespace_pids(ns: str) -> list[int]:
    """PIDs of processes living in namespace `ns` (empty if it does not exist)."""
    cp = sh(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in cp.stdout.split() if p.isdigit()]


def destroy(variant: Variant) -> list[str]:
    """Delete the variant's namespaces and /etc/netns entries; returns what was removed."""
    removed = []
    present = existing()
    for ns in (variant.ns("switch"), *(variant.ns(r) for r in ROLES)):
        if ns in present:
            sh(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
        etc = NETNS_ETC / ns
        if etc.exists():
            shutil.rmtree(etc, ignore_errors=True)
    return removed
