"""lab.json: the state file describing a running variant, and `LabInfo`, its typed view.

Contract: `save(path, data)` writes atomically (0644; it holds paths, never secrets);
`load(variant)` returns a LabInfo or raises FileNotFoundError when the variant was never brought up.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .netns import run_in as _run_in
from .paths import Paths


def save(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically replace the state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any]:
    """The raw state dict."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass(frozen=True)
class LabInfo:
    """A read-only view of lab.json. `raw` is the whole document; the attributes are shortcuts."""

    raw: dict[str, Any] = field(repr=False)

    @property
    def variant(self) -> str:
        return str(self.raw["variant"])

    @property
    def base_dir(self) -> Path:
        return Path(self.raw["base_dir"])

    @property
    def state_file(self) -> Path:
        return self.base_dir / "lab.json"

    @property
    def hostname(self) -> str:
        return str(self.raw["hostname"])

    @property
    def url(self) -> str:
        return str(self.raw["url"])

    @property
    def namespaces(self) -> dict[str, str]:
        return dict(self.raw["namespaces"])

    @property
    def addresses(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self.raw["addresses"].items()}

    @property
    def ca(self) -> Path:
        return Path(self.raw["tls"]["ca"])

    @property
    def username(self) -> str:
        return str(self.raw["auth"]["username"])

    @property
    def password_file(self) -> Path:
        return Path(self.raw["auth"]["password_file"])

    def password(self) -> str:
        """The auditor user's password (read from its 0600 file; never log it)."""
        return self.password_file.read_text().strip()

    def ns(self, role: str) -> str:
        """Namespace name of a role (registry, proxy, ci, runtime, outsider, switch)."""
        return self.namespaces[role]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def run_in(self, role: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
               timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run argv in the namespace of `role` (see lab.run_in)."""
        return _run_in(self.ns(role), argv, env=env, timeout=timeout, **kw)


def load(variant: str) -> LabInfo:
    """LabInfo of `variant` from its lab.json; FileNotFoundError if it was never brought up."""
    return LabInfo(read(Paths.for_variant(variant).state))
