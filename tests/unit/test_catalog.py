"""The catalog answers as the full load does, importing only the modules a selection needs.

auditor/plugin_index.py is generated: when `test_the_index_is_up_to_date` fails, run
`python -m auditor.catalog` and commit the file.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from auditor import catalog, plugins
from auditor.catalog import CheckCatalog, CheckInfo, PluginCatalog
from auditor.errors import UsageError
from auditor.profile import Profile, builtin_names, load_profile, validate_against_checks
from auditor.runner import Selection

ROOT = Path(__file__).resolve().parents[2]


def test_the_index_is_up_to_date() -> None:
    index_file = Path(catalog.__file__).with_name("plugin_index.py")
    assert index_file.read_text(encoding="utf-8") == catalog.render_index(catalog.build_index()), \
        "a check or probe changed: run `python -m auditor.catalog` and commit auditor/plugin_index.py"


def test_the_module_listing_finds_what_the_package_walk_imports() -> None:
    for package in (catalog.CHECKS_PACKAGE, catalog.PROBES_PACKAGE):
        assert catalog._module_files(package) == [m.__name__ for m in plugins._walk(package)]


def test_the_catalogs_hold_the_full_loads_objects() -> None:
    checks, probes = catalog.check_catalog(), catalog.probe_catalog()
    assert isinstance(checks, CheckCatalog) and isinstance(probes, PluginCatalog)
    full_checks, full_probes = plugins.load_checks(), plugins.load_probes()
    assert list(checks) == list(full_checks) and len(checks) == len(full_checks)
    assert all(checks[i] is full_checks[i] for i in full_checks)
    assert dict(catalog.check_infos(checks)) == {i: CheckInfo.of(c, c.module) for i, c in full_checks.items()}
    assert sorted(probes) == sorted(full_probes) and all(probes[n] is full_probes[n] for n in full_probes)
    assert "no.such-probe" not in probes and "no.such-check" not in checks
    with pytest.raises(KeyError):
        checks["no.such-check"]
    writers, full_writers = catalog.writer_catalog(), plugins.load_report_writers()
    assert isinstance(writers, PluginCatalog)
    assert sorted(writers) == sorted(full_writers) and all(writers[n] is full_writers[n] for n in full_writers)


def test_a_json_report_imports_its_writer_alone() -> None:
    writers = catalog.writer_catalog()
    assert isinstance(writers, PluginCatalog)
    assert "sarif" in writers and writers.modules_loaded == []
    assert writers["json"].extension == "json" and writers.modules_loaded == ["auditor.reports.json_report"]


SELECTIONS = [((), ()), (("tls",), ()), (("tls.*",), ("tls.tls13",)), (("area:registry",), ()),
              (("registry.*", "auth"), ("registry.debug-*",)), (("signatures", "scans"), ()), (("nothing.here",), ()),
              ((), ("tls", "registry", "proxy"))]


@pytest.mark.parametrize("profile_name", builtin_names())
@pytest.mark.parametrize(("select", "skip"), SELECTIONS)
def test_a_selection_chooses_the_same_checks_and_imports_only_their_modules(
        profile_name: str, select: tuple[str, ...], skip: tuple[str, ...]) -> None:
    selection = Selection(load_profile(profile_name), select, skip)
    expected = selection.apply(plugins.load_checks())
    checks = catalog.check_catalog()
    assert isinstance(checks, CheckCatalog)
    assert selection.apply(checks) == expected
    assert checks.modules_loaded == sorted({c.module for c in expected})


def test_a_tls_selection_imports_the_tls_modules_alone() -> None:
    checks = catalog.check_catalog()
    assert isinstance(checks, CheckCatalog)
    chosen = Selection(load_profile("seed-hardened"), ("tls",)).apply(checks)
    assert {c.id for c in chosen} >= {"tls.protocols", "tls.ciphers", "tls.certificate"}
    assert checks.modules_loaded == ["auditor.checks.tls"]
    probes = catalog.probe_catalog()
    assert isinstance(probes, PluginCatalog)
    assert probes["tls.scan"].name == "tls.scan" and probes.modules_loaded == ["auditor.probes.tls"]


PROFILES = {
    "unknown ids warn": ("params:\n  nothing.here: {x: 1}\nselect: ['*', 'nothing.*']\nskip: [tls.nope]\n"
                         "severity:\n  nosuch: high\n"),
    "wrong kind": "params:\n  tls.certificate: {min_days_left: soon}\n",
    "unknown parameter": "params:\n  tls.protocols: {allowed: [TLSv1.3]}\n",
    "null default takes anything": "params:\n  tls.certificate: {key_types: [RSA], max_lifetime_days: 398}\n",
    "null value": "params:\n  tls.certificate: {min_days_left: null}\n",
}


@pytest.mark.parametrize("body", PROFILES.values(), ids=PROFILES.keys())
def test_profile_validation_answers_as_against_the_loaded_checks(tmp_path: Path, body: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(f"name: site\nextends: seed-hardened\n{body}")
    profile = load_profile(str(path))

    def outcome(checks: object) -> object:
        try:
            return validate_against_checks(profile, checks)  # type: ignore[arg-type]
        except UsageError as exc:
            return str(exc)

    checks = catalog.check_catalog()
    expected = outcome(plugins.load_checks())
    assert outcome(checks) == expected
    assert isinstance(checks, CheckCatalog)
    # a clean profile is checked on the index alone; anything to say is confirmed on the checks themselves
    assert checks.modules_loaded == ([] if expected == [] else sorted({i.module for i in checks.infos.values()}))


def _stale(monkeypatch: pytest.MonkeyPatch, **entries: tuple) -> None:
    index = dict(vars(sys.modules[catalog.INDEX_MODULE]))
    monkeypatch.setattr(catalog, "_index", lambda: {**index, "CHECKS": {**index["CHECKS"], **entries}})


def test_a_stale_index_never_makes_a_profile_error_or_warning_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module, _area, needs, _params = catalog._index()["CHECKS"]["tls.certificate"]  # type: ignore[index]
    _stale(monkeypatch, **{"tls.certificate": (module, "elsewhere", needs, {"min_days_left": "string"})})
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nselect: [tls]\nparams:\n  tls.certificate: {min_days_left: 30}\n")
    assert validate_against_checks(load_profile(str(path)), catalog.check_catalog()) == []


def test_a_stale_index_never_makes_a_needs_error_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    module, area, _needs, params = catalog._index()["CHECKS"]["tls.protocols"]  # type: ignore[index]
    _stale(monkeypatch, **{"tls.protocols": (module, area, ("tls.renamed-probe",), params)})
    catalog.validate_needs(catalog.check_catalog(), catalog.probe_catalog())


def test_a_module_that_disagrees_with_the_index_makes_the_catalog_load_everything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    index = dict(vars(sys.modules[catalog.INDEX_MODULE]))
    stale = dict(index["CHECKS"])
    module, area, needs, _params = stale.pop("tls.tls13")  # as if tls.tls13 were added after the index was made
    stale["tls.protocols"] = (module, area, needs, {})  # and tls.protocols had gained its parameter since
    monkeypatch.setattr(catalog, "_index", lambda: {**index, "CHECKS": stale})
    checks = catalog.check_catalog()
    assert isinstance(checks, CheckCatalog) and "tls.tls13" not in checks
    chosen = Selection(Profile(name="p"), ("tls",)).apply(checks)
    assert [c.id for c in chosen] == [c.id for c in Selection(Profile(name="p"), ("tls",)).apply(plugins.load_checks())]
    assert "tls.tls13" in checks and len(checks) == len(plugins.load_checks())


def test_a_stale_probe_index_falls_back_to_the_full_load(monkeypatch: pytest.MonkeyPatch) -> None:
    index = dict(vars(sys.modules[catalog.INDEX_MODULE]))
    probes = {**index["PROBES"], "tls.scan": "auditor.probes.network"}
    monkeypatch.setattr(catalog, "_index", lambda: {**index, "PROBES": probes})
    found = catalog.probe_catalog()
    assert found["tls.scan"] is plugins.load_probes()["tls.scan"]
    assert found["net.registry-port"] is plugins.load_probes()["net.registry-port"]


def test_an_unindexed_module_file_or_missing_index_means_the_full_load(monkeypatch: pytest.MonkeyPatch) -> None:
    index = dict(vars(sys.modules[catalog.INDEX_MODULE]))
    monkeypatch.setattr(catalog, "_index", lambda: {**index, "CHECK_MODULES": index["CHECK_MODULES"][1:],
                                                    "PROBE_MODULES": index["PROBE_MODULES"][1:]})
    assert catalog.check_catalog() is plugins.load_checks()
    assert catalog.probe_catalog() is plugins.load_probes()
    monkeypatch.setattr(catalog, "_index", lambda: None)
    assert catalog.check_catalog() is plugins.load_checks()


CHECK_SOURCE = """
from auditor.checkapi import check, passed
from auditor.model import Severity, Vantage

@check(id="thirdparty.extra", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
       needs=("config.registry",), rationale="r", passes_when="p", remediation="m", guide="g")
def judge(ev, params):
    yield passed("s", "ok")
"""


def _plugin_distribution(root: Path, group: str = "regaudit.checks") -> None:
    package = root / "catplug"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "extra.py").write_text(textwrap.dedent(CHECK_SOURCE))
    info = root / "catplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: catplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\nextra = catplug.extra\n")


def _declared_groups() -> frozenset[str]:
    from importlib.metadata import entry_points

    return frozenset(g for g in ("regaudit.checks", "regaudit.probes", "regaudit.reports") if entry_points(group=g))


def test_the_plugin_scan_answers_as_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog._plugin_groups.cache_clear()
    assert catalog._plugin_groups() == _declared_groups()
    _plugin_distribution(tmp_path, "regaudit.probes")
    monkeypatch.syspath_prepend(str(tmp_path))
    catalog._plugin_groups.cache_clear()
    assert catalog._may_declare_plugins() is True
    assert catalog._plugin_groups() == _declared_groups() == {"regaudit.probes"}
    catalog._plugin_groups.cache_clear()


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    assert catalog._may_declare_plugins() is True


def test_an_installed_plugin_means_the_full_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "load_checks", lambda: {"fresh": "full load"})
    catalog._plugin_groups.cache_clear()
    try:
        assert catalog.check_catalog() == {"fresh": "full load"}
        assert isinstance(catalog.probe_catalog(), PluginCatalog)  # no probe plugin: still the index
    finally:
        catalog._plugin_groups.cache_clear()
        sys.modules.pop("catplug.extra", None)
        sys.modules.pop("catplug", None)
