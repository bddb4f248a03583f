"""Shared reading of the registry's config for the registry.* checks: the effective values.

The effective configuration is the file's values with the registry's own defaults (2.8,
docs/configuration.md) applied where a key is absent; `Value.default` says when a verdict
rests on a default, and the checks say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.checkapi import Evidence
from auditor.errors import ProbeUnavailable
from auditor.model import JSON

PROBE = "config.registry"

# Defaults distribution 2.8 applies when a key is absent.
DEFAULTS: dict[str, JSON] = {
    "log.level": "info",
    "log.formatter": "text",
    "storage.delete.enabled": False,
    "storage.maintenance.uploadpurging.enabled": True,
    "storage.maintenance.uploadpurging.age": "168h",
    "storage.maintenance.uploadpurging.interval": "24h",
    "storage.maintenance.uploadpurging.dryrun": False,
    "storage.maintenance.readonly.enabled": False,
    "health.storagedriver.enabled": False,
    "health.storagedriver.interval": "10s",
    "health.storagedriver.threshold": 0,
    "auth.token.autoredirect": False,
    "http.addr": ":5000",
}


@dataclass(frozen=True)
class Value:
    """A config value and whether it came from the registry's default."""

    key: str
    value: JSON
    default: bool

    def describe(self) -> str:
        return f"{self.key}={self.value!r}" + (" (registry default: key absent)" if self.default else "")


def config_facts(ev: Evidence) -> dict[str, Any]:
    """The probe's facts; raises ProbeUnavailable (-> error) when the file does not parse."""
    facts = ev[PROBE]
    if "config" not in facts:
        raise ProbeUnavailable(PROBE, f"{facts.get('path')} does not parse: {facts.get('parse_error')}")
    return dict(facts)


def raw(config: dict[str, Any], key: str) -> tuple[bool, JSON]:
    """(present, value) for a dotted key."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def effective(config: dict[str, Any], key: str) -> Value:
    present, value = raw(config, key)
    if present and value is not None:
        return Value(key, value, False)
    return Value(key, DEFAULTS.get(key), True)


def subject(facts: dict[str, Any]) -> str:
    return str(facts.get("path", "registry config"))


NEEDS = (PROBE,)
REFS_CONFIG = (
    "NIST SP 800-190 4.2.1 (registry: insecure connections and configuration)",
    "CIS Docker Benchmark 1.6 section 2 (daemon and registry configuration)",
)
PURGE_KEYS = ("age", "interval", "dryrun")


def purging_section(config: dict[str, Any]) -> dict[str, Any] | None:
    """The storage.maintenance.uploadpurging mapping when the file sets one, else None."""
    present, section = raw(config, "storage.maintenance.uploadpurging")
    return section if present and isinstance(section, dict) else None
