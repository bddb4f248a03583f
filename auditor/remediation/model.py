"""The remediation plan model: what would change on the host, what is only an artifact, what is text.

A plan is pure data built from evidence and the live files; `apply` executes its changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileChange:
    """Replace a live file's content and/or its mode and owner.

    `content` None means metadata only (chmod/chown). `validate` names the validator that must
    accept the file before any service sees it; `service` the service to reload or restart.
    """

    path: str
    generator: str
    checks: tuple[str, ...]
    content: bytes | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    validate: str | None = None
    service: str | None = None
    note: str = ""

    def describe(self) -> str:
        parts = []
        if self.content is not None:
            parts.append("rewrite")
        if self.mode is not None:
            parts.append(f"chmod {self.mode:04o}")
        if self.uid is not None or self.gid is not None:
            parts.append(f"chown {'' if self.uid is None else self.uid}:{'' if self.gid is None else self.gid}")
        return f"{' + '.join(parts)} {self.path}"


@dataclass(frozen=True)
class MountChange:
    """Remount a tmpfs with new options (in the proxy's mount namespace); `undo` restores it."""

    mountpoint: str
    options: str
    undo: str
    ns_pid: int | None
    generator: str
    checks: tuple[str, ...]

    def describe(self) -> str:
        where = f" (mount namespace of pid {self.ns_pid})" if self.ns_pid else ""
        return f"mount -o remount,{self.options} {self.mountpoint}{where}"


@dataclass(frozen=True)
class FirewallChange:
    """Install a dedicated chain for the registry port (iptables-restore --noflush input)."""

    family: str  # "ipv4" | "ipv6"
    restore: str
    chain: str
    port: int
    ns_pid: int | None
    generator: str
    checks: tuple[str, ...]

    @property
    def tool(self) -> str:
        return "iptables" if self.family == "ipv4" else "ip6tables"

    def describe(self) -> str:
        where = f" (network namespace of pid {self.ns_pid})" if self.ns_pid else ""
        return f"{self.tool}-restore --noflush <chain {self.chain} for tcp/{self.port}>{where}"


@dataclass(frozen=True)
class MoveAside:
    """Move a directory (a stale upload) into the apply's backup: what the registry's purger deletes."""

    path: str
    generator: str
    checks: tuple[str, ...]

    def describe(self) -> str:
        return f"move {self.path} into the backup directory (stale upload)"


@dataclass(frozen=True)
class Artifact:
    """A generated file that is not installed by apply (scripts, CI jobs, policies, alternatives)."""

    name: str
    content: bytes
    generator: str
    checks: tuple[str, ...]
    purpose: str
    mode: int = 0o644


@dataclass(frozen=True)
class TextRemedy:
    """A remediation no config can perform: the steps a person must take."""

    check: str
    subjects: tuple[str, ...]
    steps: str
    generator: str | None = None


@dataclass
class Plan:
    """Everything remediation would do for one audit's failing results."""

    files: list[FileChange] = field(default_factory=list)
    mounts: list[MountChange] = field(default_factory=list)
    firewall: list[FirewallChange] = field(default_factory=list)
    moves: list[MoveAside] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    texts: list[TextRemedy] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)
    failing: dict[str, str | None] = field(default_factory=dict)
    services: dict[str, dict] = field(default_factory=dict)
    containers: list[Any] = field(default_factory=list)  # containers.ContainerChange

    @property
    def changes_host(self) -> bool:
        return bool(self.files or self.mounts or self.firewall or self.moves or self.containers)

    def services_to_reload(self) -> list[str]:
        """Services whose config changes, in reload order: nginx, apache, then the registry."""
        wanted = {f.service for f in self.files if f.service and f.content is not None}
        return [s for s in ("nginx", "apache", "registry") if s in wanted]
