"""The fleet's targets, read from the Ansible inventory the playbook used.

`ansible-inventory --list` resolves the inventory (groups, group_vars, host_vars, vaulted values)
exactly as the playbook saw it; the targets are the hosts of one group (default `registries`,
children included). Per-target variables, usually set on groups:

- `regaudit_profile`: profile name or YAML path on the control host (default: the default profile)
- `regaudit_waivers`: YAML file on the control host with a `waivers:` list added to the profile's
- `regaudit_url`: the registry's public URL (outside and content evidence, gathered by the playbook)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor import bounded
from auditor.errors import UsageError

DEFAULT_GROUP = "registries"
TARGET_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True)
class FleetTarget:
    """One inventory host to judge."""

    name: str
    profile: str | None = None
    waivers: str | None = None
    url: str | None = None
    groups: tuple[str, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)


def ansible_inventory(inventory: str, timeout: float = 120.0) -> dict[str, Any]:
    """`ansible-inventory -i INVENTORY --list` as JSON; UsageError when it cannot be read."""
    exe = shutil.which("ansible-inventory")
    if exe is None:
        raise UsageError("ansible-inventory is not installed (pip install ansible-core): it reads the fleet's "
                         "inventory")
    if not Path(inventory).exists():
        raise UsageError(f"--inventory {inventory}: no such file or directory")
    try:
        proc = subprocess.run([exe, "-i", inventory, "--list"], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"ansible-inventory did not answer within {timeout:g}s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"ansible-inventory -i {inventory} failed: {last}")
    try:
        data = bounded.load_json(proc.stdout, "ansible-inventory output", max_bytes=256 * 1024 * 1024)
    except ValueError as exc:
        raise UsageError(f"ansible-inventory printed no JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError("ansible-inventory printed no inventory")
    return data


def _members(data: Mapping[str, Any], group: str, seen: set[str]) -> list[str]:
    if group in seen:
        return []
    seen.add(group)
    node = data.get(group) or {}
    hosts = list(node.get("hosts") or [])
    for child in node.get("children") or []:
        hosts += _members(data, child, seen)
    return hosts


def _groups_of(data: Mapping[str, Any], host: str) -> tuple[str, ...]:
    return tuple(sorted(g for g, node in data.items() if g != "_meta" and host in (node or {}).get("hosts", [])))


def targets_from(data: Mapping[str, Any], group: str = DEFAULT_GROUP) -> list[FleetTarget]:
    """The hosts of `group` with their variables, in inventory order (duplicates once)."""
    if group not in data:
        raise UsageError(f"the inventory has no group {group!r} (the fleet's targets)")
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    out: list[FleetTarget] = []
    for name in dict.fromkeys(_members(data, group, set())):
        if not set(name) <= TARGET_NAME_CHARS:
            raise UsageError(f"inventory host {name!r}: use letters, digits, '.', '_' and '-' in target names")
        variables = dict(hostvars.get(name) or {})
        out.append(FleetTarget(
            name=name,
            profile=_text(variables.get("regaudit_profile")),
            waivers=_text(variables.get("regaudit_waivers")),
            url=_text(variables.get("regaudit_url")),
            groups=_groups_of(data, name),
            variables=variables,
        ))
    if not out:
        raise UsageError(f"inventory group {group!r} has no hosts")
    return out


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def load_targets(inventory: str, group: str = DEFAULT_GROUP) -> list[FleetTarget]:
    return targets_from(ansible_inventory(inventory), group)
