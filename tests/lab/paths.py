"""Where a variant keeps its files: /var/lib/regaudit-lab/<variant>/ (REGAUDIT_LAB_ROOT overrides).

Contract: pure path arithmetic; `Paths.for_variant(name)` never touches the disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/regaudit-lab")


def lab_root() -> Path:
    """Parent of every variant's base dir."""
    return Path(os.environ.get("REGAUDIT_LAB_ROOT", str(DEFAULT_ROOT)))


@dataclass(frozen=True)
class Paths:
    """All file locations of one variant."""

    base: Path

    @classmethod
    def for_variant(cls, name: str) -> Paths:
        return cls(lab_root() / name)

    @property
    def state(self) -> Path:
        return self.base / "lab.json"

    @property
    def secrets(self) -> Path:
        return self.base / "secrets"

    @property
    def password_file(self) -> Path:
        return self.secrets / "password"

    @property
    def pki(self) -> Path:
        return self.base / "pki"

    @property
    def registry(self) -> Path:
        return self.base / "registry"

    @property
    def storage(self) -> Path:
        return self.registry / "storage"

    def registry_conf(self, index: int) -> Path:
        return self.registry / ("config.yml" if index == 0 else f"config-{index}.yml")

    def registry_log(self, index: int) -> Path:
        return self.registry / ("registry.log" if index == 0 else f"registry-{index}.log")

    @property
    def nginx(self) -> Path:
        return self.base / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        return self.nginx / "nginx.pid"

    @property
    def apache(self) -> Path:
        return self.base / "apache"

    @property
    def apache_conf(self) -> Path:
        return self.apache / "apache2.conf"

    @property
    def apache_run(self) -> Path:
        return self.apache / "run"

    @property
    def apache_pid(self) -> Path:
        return self.apache_run / "apache2.pid"

    @property
    def auth(self) -> Path:
        return self.base / "auth"

    @property
    def htpasswd(self) -> Path:
        return self.auth / "htpasswd"

    @property
    def token(self) -> Path:
        return self.base / "token"

    @property
    def tmpfs(self) -> Path:
        return self.base / "tmpfs"

    @property
    def proxy_temp(self) -> Path:
        return self.tmpfs / "proxy_temp"

    @property
    def client_body_temp(self) -> Path:
        return self.tmpfs / "client_body"

    @property
    def fstab(self) -> Path:
        return self.base / "fstab"

    @property
    def scans(self) -> Path:
        return self.base / "scans"

    @property
    def logs(self) -> Path:
        return self.base / "logs"
