"""Discovery of checks, probes and report writers: package walk plus entry points.

Built-ins are the module-level objects of the right type in `auditor.checks`, `auditor.probes`
and `auditor.reports`; third parties add theirs through the entry-point groups
`regaudit.checks`, `regaudit.probes` and `regaudit.reports`. An entry point may name an object,
an iterable of objects, or a module. Duplicate names fail at load.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from functools import cache
from types import ModuleType
from typing import Any, TypeVar

from auditor.checkapi import Check
from auditor.errors import PluginError
from auditor.probeapi import Probe

T = TypeVar("T")


def _walk(package: str) -> Iterator[ModuleType]:
    """Every public module of `package` and its subpackages (a name part starting with _ is private)."""
    pkg = importlib.import_module(package)
    infos = pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.")
    for info in sorted(infos, key=lambda i: i.name):
        if any(part.startswith("_") for part in info.name[len(package) + 1:].split(".")):
            continue
        yield importlib.import_module(info.name)


def _members(obj: Any, kind: type[T]) -> list[T]:
    if isinstance(obj, kind):
        return [obj]
    if isinstance(obj, ModuleType):
        return [value for value in vars(obj).values() if isinstance(value, kind)]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        found = [item for item in obj if isinstance(item, kind)]
        if found:
            return found
    raise PluginError(f"{obj!r} is not a {kind.__name__}, a list of them, or a module holding them")


def _load(package: str, group: str, kind: type[T], key: str) -> dict[str, tuple[T, str]]:
    found: dict[str, tuple[T, str]] = {}

    def add(item: T, origin: str) -> None:
        name = getattr(item, key)
        if name in found:
            raise PluginError(f"duplicate {kind.__name__.lower()} {name!r}: in {found[name][1]} and in {origin}")
        found[name] = (item, origin)

    for module in _walk(package):
        for item in _members(module, kind):
            add(item, module.__name__)
    from importlib.metadata import entry_points  # about 10 ms: only when everything is loaded

    for ep in entry_points(group=group):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginError(f"entry point {ep.name} ({ep.value}) in {group} failed to load: {exc}") from exc
        for item in _members(loaded, kind):
            add(item, f"entry point {ep.name} ({ep.value})")
    return found


@cache
def load_checks() -> dict[str, Check]:
    """All checks by id (built-in and third-party), sorted by id."""
    found = _load("auditor.checks", "regaudit.checks", Check, "id")
    return {name: found[name][0] for name in sorted(found)}


@cache
def load_probes() -> dict[str, Probe]:
    """All probes by name."""
    found = _load("auditor.probes", "regaudit.probes", Probe, "name")
    return {name: found[name][0] for name in sorted(found)}


@cache
def load_report_writers() -> dict[str, Any]:
    """All report writers by format name (see auditor.reportapi.ReportWriter)."""
    from auditor.reportapi import ReportWriter

    found = _load("auditor.reports", "regaudit.reports", ReportWriter, "name")
    return {name: found[name][0] for name in sorted(found)}

