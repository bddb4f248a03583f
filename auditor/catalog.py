"""The installed checks, probes and report writers, a module imported only when one of its own is used.

An audit selecting `tls` needs checks/tls.py and auditor/probes/tls.py, not the registry-API walker,
the firewall model or jsonschema that other modules import; a JSON report needs reports/json_report.py
alone. `check_catalog()`, `probe_catalog()` and `writer_catalog()` are mappings like
`plugins.load_checks()`, `load_probes()` and `load_report_writers()` (same keys, same objects) whose
values are imported on first access, guided by the generated index auditor/plugin_index.py (which
module defines each check, probe and writer, and what selecting checks and validating a profile read
of a check: id, area, needs, parameter kinds).

Contract: every answer equals the full load's. The index is exact for a released tree (a unit test
compares it with a full load); at run time a module that disagrees with it once imported (a check
added, renamed or changed without re-generating), a module file the index does not know, or an
installed third-party plugin (entry point) makes the catalog load everything as before. Re-generate
with `python -m auditor.catalog`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from auditor.checkapi import Check
from auditor.errors import PluginError

if TYPE_CHECKING:
    from auditor.probeapi import Probe  # asyncio: imported with the first probe module
    from auditor.reportapi import ReportWriter

T = TypeVar("T")

log = logging.getLogger(__name__)

INDEX_MODULE = "auditor.plugin_index"
CHECKS_PACKAGE = "auditor.checks"
PROBES_PACKAGE = "auditor.probes"
REPORTS_PACKAGE = "auditor.reports"


def json_kind(value: Any) -> str:
    """The JSON kind of a value, as a profile's parameter is checked against its default's."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "null"


@dataclass(frozen=True)
class CheckInfo:
    """What selecting checks (`--select`, profiles) and validating a profile read of a check."""

    id: str
    area: str
    needs: tuple[str, ...]
    params: Mapping[str, str | None]  # parameter name -> JSON kind of its default (None: a null default)
    module: str  # the module that defines it

    @classmethod
    def of(cls, item: Check, module: str) -> CheckInfo:
        meta = item.meta
        kinds = {k: None if v is None else json_kind(v) for k, v in meta.params.items()}
        return cls(meta.id, meta.area, tuple(meta.needs), kinds, module)


def check_infos(checks: Mapping[str, Check]) -> Mapping[str, CheckInfo]:
    """Every check's info, without importing a catalog's modules."""
    if isinstance(checks, CheckCatalog):
        return checks.infos
    return {check_id: CheckInfo.of(item, item.module) for check_id, item in checks.items()}


def validate_needs(checks: Mapping[str, Check], probes: Mapping[str, Probe]) -> None:
    """Fail at load when a check needs a probe that does not exist (a catalog's modules are not imported;
    what the index says is missing is confirmed on the check itself before it is an error)."""
    for info in check_infos(checks).values():
        missing = [name for name in info.needs if name not in probes]
        if missing and isinstance(checks, CheckCatalog):
            missing = [name for name in checks[info.id].meta.needs if name not in probes]
        if missing:
            raise PluginError(f"check {info.id} needs unknown evidence: {', '.join(missing)}")


# -- the index -------------------------------------------------------------------------------------
def build_index() -> dict[str, Any]:
    """The index of the built-in checks, probes and report writers, from a full walk of their packages."""
    from auditor import plugins

    # duplicate ids and bad metadata fail here, as at a full load
    plugins.load_checks(), plugins.load_probes(), plugins.load_report_writers()
    check_modules, checks = [], {}
    for module in plugins._walk(CHECKS_PACKAGE):
        check_modules.append(module.__name__)
        for item in plugins._members(module, Check):
            info = CheckInfo.of(item, module.__name__)
            checks[item.id] = (info.module, info.area, info.needs, dict(sorted(info.params.items())))
    from auditor.probeapi import Probe

    probe_modules, probes = [], {}
    for module in plugins._walk(PROBES_PACKAGE):
        probe_modules.append(module.__name__)
        for found in plugins._members(module, Probe):
            probes[found.name] = module.__name__
    from auditor.reportapi import ReportWriter

    report_modules, reports = [], {}
    for module in plugins._walk(REPORTS_PACKAGE):
        report_modules.append(module.__name__)
        for writer in plugins._members(module, ReportWriter):
            reports[writer.name] = module.__name__
    return {"CHECK_MODULES": tuple(check_modules), "CHECKS": dict(sorted(checks.items())),
            "PROBE_MODULES": tuple(probe_modules), "PROBES": dict(sorted(probes.items())),
            "REPORT_MODULES": tuple(report_modules), "REPORTS": dict(sorted(reports.items()))}


def _literal(value: Any) -> str:
    """`value` (strings, None, tuples, dicts of them) as a Python literal with double quotes."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return "None" if value is None else json.dumps(value)


def render_index(index: Mapping[str, Any]) -> str:
    """The source of auditor/plugin_index.py for `index` (one entry a line)."""
    lines = ['"""Which module defines each built-in check and probe, and what selection reads of a check.',
             "",
             "Generated by `python -m auditor.catalog` (auditor/catalog.py reads it); do not edit.",
             "tests/unit/test_catalog.py fails when it differs from a full load of the checks and probes.",
             "CHECKS: id -> (module, area, needs, {parameter: JSON kind of its default, None for null}).",
             '"""', "", "# ruff: noqa: E501  (generated: one entry a line)", "from typing import Any", ""]
    for name, value in index.items():
        if isinstance(value, tuple):
            lines += [f"{name}: tuple[str, ...] = (", *(f"    {_literal(v)}," for v in value), ")", ""]
        else:
            lines += [f"{name}: dict[str, Any] = {{", *(f"    {_literal(k)}: {_literal(v)},"
                                                      for k, v in value.items()), "}", ""]
    return "\n".join(lines)


def _index() -> Mapping[str, Any] | None:
    try:
        module = importlib.import_module(INDEX_MODULE)
    except ImportError:
        return None
    return vars(module)


def _members_of(module: ModuleType, kind: type[T]) -> list[T]:
    """The module-level objects of type `kind` in `module` (as plugins._walk's discovery finds them)."""
    return [value for value in vars(module).values() if isinstance(value, kind)]


@cache
def _module_files(package: str) -> list[str] | None:
    """The public modules of `package` and its subpackages as `plugins._walk` finds them, from a
    directory listing (no import); None when the package is not a plain directory tree."""
    pkg = importlib.import_module(package)
    paths = list(getattr(pkg, "__path__", []))
    if len(paths) != 1:
        return None
    found: list[str] = []

    def scan(directory: Path, prefix: str) -> None:
        names: set[str] = set()
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            return
        for entry in entries:
            name = inspect.getmodulename(entry)
            path = directory / entry
            is_pkg = False
            if not name and "." not in entry and path.is_dir():
                if not any(inspect.getmodulename(f) == "__init__" for f in os.listdir(path)):
                    continue
                name, is_pkg = entry, True
            if not name or name == "__init__" or name in names or "." in name:
                continue
            names.add(name)
            if name.startswith("_"):
                continue
            found.append(f"{prefix}{name}")
            if is_pkg:
                scan(path, f"{prefix}{name}.")

    scan(Path(paths[0]), f"{package}.")
    return sorted(found)


@cache
def _plugin_groups() -> frozenset[str]:
    """The regaudit entry-point groups (checks, probes, reports) some installed distribution declares."""
    if not _may_declare_plugins():
        return frozenset()
    from importlib.metadata import entry_points

    return frozenset(g for g in ("regaudit.checks", "regaudit.probes", "regaudit.reports") if entry_points(group=g))


def _may_declare_plugins() -> bool:
    """False when no distribution on sys.path can declare a regaudit entry point: no entry_points.txt
    of a *.dist-info or *.egg-info folder mentions `regaudit.`. Answers without importing
    importlib.metadata and parsing every distribution's metadata (about 10 ms a run); True (ask
    importlib.metadata) at any sign of one and wherever this scan cannot see (a zip on sys.path, a
    meta-path finder that finds distributions of its own)."""
    from importlib.machinery import PathFinder

    if any(hasattr(f, "find_distributions") and f is not PathFinder for f in sys.meta_path):
        return True
    for entry in sys.path:
        root = entry or "."
        try:
            with os.scandir(root) as found:
                names = [e.name for e in found if e.name.lower().endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True  # a zip: importlib.metadata reads it
        except OSError:
            continue  # importlib.metadata skips a path entry it cannot list, too
        for name in names:
            try:
                with open(os.path.join(root, name, "entry_points.txt"), "rb") as declared:
                    if b"regaudit." in declared.read():
                        return True
            except OSError:
                continue
    return False


# -- checks ----------------------------------------------------------------------------------------
class CheckCatalog(Mapping[str, Check]):
    """Every installed check by id (sorted), a module imported when one of its checks is read."""

    def __init__(self, infos: Mapping[str, CheckInfo]) -> None:
        self.infos: Mapping[str, CheckInfo] = infos
        self._loaded: dict[str, Check] = {}
        self._full: dict[str, Check] | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self.infos)

    def __len__(self) -> int:
        return len(self.infos)

    def __contains__(self, key: object) -> bool:
        return key in self.infos

    def __getitem__(self, check_id: str) -> Check:
        if self._full is not None:
            return self._full[check_id]
        if check_id not in self._loaded:
            info = self.infos[check_id]
            self._import(info.module)
            if self._full is not None:
                return self._full[check_id]
        return self._loaded[check_id]

    @property
    def modules_loaded(self) -> list[str]:
        """The check modules imported so far (all of them after a fallback to the full load)."""
        if self._full is not None:
            return sorted({i.module for i in self.infos.values()})
        return sorted({self.infos[c].module for c in self._loaded})

    def choose(self, wanted: Callable[[CheckInfo], bool]) -> list[Check]:
        """The checks whose info is `wanted`, importing only their modules."""
        chosen = [self[check_id] for check_id, info in self.infos.items() if wanted(info)]
        if self._full is not None:  # a module disagreed with the index: choose again on the real metadata
            chosen = [self[check_id] for check_id, info in self.infos.items() if wanted(info)]
        return chosen

    def _import(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        found = {item.id: item for item in _members_of(module, Check)}
        expected = {c: i for c, i in self.infos.items() if i.module == module_name}
        if set(found) != set(expected) or any(CheckInfo.of(item, module_name) != expected[c]
                                                for c, item in found.items()):
            self._fall_back(f"{module_name} differs from the index")
            return
        self._loaded.update(found)

    @property
    def complete(self) -> bool:
        """Whether every check is loaded (after `load_all` or a fallback): infos are then the checks' own."""
        return self._full is not None

    def load_all(self) -> None:
        """Load every check (what the full load does); infos become the loaded checks' own."""
        if self._full is None:
            self._fall_back("every check asked for")

    def _fall_back(self, why: str) -> None:
        from auditor import plugins

        log.debug("check catalog: %s; loading every check (python -m auditor.catalog re-generates the index)", why)
        self._full = plugins.load_checks()
        self.infos = {check_id: CheckInfo.of(item, item.module) for check_id, item in self._full.items()}


def check_catalog() -> Mapping[str, Check]:
    """Every installed check by id, as `plugins.load_checks()` but importing modules on demand; the
    full load itself when a third-party plugin is installed or the index does not fit the tree."""
    index = _index()
    if index is None or "regaudit.checks" in _plugin_groups() or \
            _module_files(CHECKS_PACKAGE) != list(index["CHECK_MODULES"]):
        from auditor import plugins

        return plugins.load_checks()
    infos = {check_id: CheckInfo(check_id, area, tuple(needs), dict(params), module)
             for check_id, (module, area, needs, params) in index["CHECKS"].items()}
    return CheckCatalog(infos)


# -- probes and report writers ----------------------------------------------------------------------
class PluginCatalog(Mapping[str, T]):
    """Plugins of one kind by name (probes, report writers), a module imported when one of its plugins
    is first read; anything the index does not answer right is looked up in the full load."""

    def __init__(self, modules: Mapping[str, str], kind: Callable[[], type[T]], key: str,
                 full: Callable[[], Mapping[str, T]]) -> None:
        self._modules = dict(modules)
        self._kind, self._key, self._load_full = kind, key, full
        self._loaded: dict[str, T] = {}
        self._full: Mapping[str, T] | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._full if self._full is not None else self._modules)

    def __len__(self) -> int:
        return len(self._full if self._full is not None else self._modules)

    def __contains__(self, key: object) -> bool:
        if self._full is None and key in self._modules:
            return True
        return key in self._everything()

    def __getitem__(self, name: str) -> T:
        if self._full is None and name in self._modules:
            if name not in self._loaded:
                self._import(self._modules[name])
            if name in self._loaded:
                return self._loaded[name]
        return self._everything()[name]

    @property
    def modules_loaded(self) -> list[str]:
        """The modules imported so far (all of them after a fallback to the full load)."""
        if self._full is not None:
            return sorted(set(self._modules.values()))
        return sorted({self._modules[p] for p in self._loaded})

    def _import(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        found = {getattr(p, self._key): p for p in _members_of(module, self._kind())}
        if set(found) != {name for name, mod in self._modules.items() if mod == module_name}:
            log.debug("plugin catalog: %s differs from the index; loading every plugin of its kind", module_name)
            self._everything()
            return
        self._loaded.update(found)

    def _everything(self) -> Mapping[str, T]:
        if self._full is None:
            self._full = self._load_full()
        return self._full


def _probe_class() -> type[Probe]:
    from auditor.probeapi import Probe

    return Probe


def _writer_class() -> type[ReportWriter]:
    from auditor.reportapi import ReportWriter

    return ReportWriter


def _all_probes() -> Mapping[str, Probe]:
    from auditor import plugins

    return plugins.load_probes()


def _all_writers() -> Mapping[str, ReportWriter]:
    from auditor import plugins

    return plugins.load_report_writers()


def probe_catalog() -> Mapping[str, Probe]:
    """Every installed probe by name, as `plugins.load_probes()` but importing modules on demand."""
    index = _index()
    if index is None or "regaudit.probes" in _plugin_groups() or \
            _module_files(PROBES_PACKAGE) != list(index["PROBE_MODULES"]):
        return _all_probes()
    return PluginCatalog(index["PROBES"], _probe_class, "name", _all_probes)


def writer_catalog() -> Mapping[str, ReportWriter]:
    """Every installed report writer by format name, as `plugins.load_report_writers()` but importing
    a writer's module only when its format is written."""
    index = _index()
    if index is None or "regaudit.reports" in _plugin_groups() or \
            _module_files(REPORTS_PACKAGE) != list(index["REPORT_MODULES"]):
        return _all_writers()
    return PluginCatalog(index["REPORTS"], _writer_class, "name", _all_writers)


def main() -> int:
    """Re-generate auditor/plugin_index.py from a full load."""
    path = Path(__file__).with_name("plugin_index.py")
    path.write_text(render_index(build_index()), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
