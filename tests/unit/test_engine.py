"""The engine: gathering under deadlines, probe failures, discovery, waivers, scoring, exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import textwrap
import time
from pathlib import Path

import pytest

from auditor import catalog, plugins
from auditor.checkapi import Check, Evidence, ProbeRecord, check, passed
from auditor.credentials import Credentials, Secret
from auditor.errors import NotApplicable, PluginError, ProbeError, UsageError
from auditor.gather import Gatherer
from auditor.model import Result, Severity, Status, Vantage
from auditor.probeapi import ProbeContext, probe
from auditor.profile import load_profile
from auditor.runner import exit_code, judge_all
from auditor.scoring import score
from auditor.target import Target

from .helpers import NOW


def _check(check_id: str, needs: tuple[str, ...], severity: Severity = Severity.HIGH, area: str = "demo") -> Check:
    @check(id=check_id, title="t", severity=severity, area=area, vantage=Vantage.INSIDE, needs=needs,
           rationale="r", passes_when="p", remediation="m", guide="g")
    def judge_fn(ev: Evidence, params):
        for name in needs:
            ev[name]
        yield passed("s", "ok")

    return judge_fn


def _gather(probes, names, deadline=5.0, credentials=None):
    gatherer = Gatherer({p.name: p for p in probes}, Target(inside=True), credentials, deadline)
    return asyncio.run(gatherer.gather(names))


@probe("demo.ok")
async def ok_probe(ctx: ProbeContext):
    return {"value": 1}


@probe("demo.slow", timeout=60)
async def slow_probe(ctx: ProbeContext):
    await asyncio.sleep(30)
    return {}


@probe("demo.failing")
async def failing_probe(ctx: ProbeContext):
    raise ProbeError("connection refused by 127.0.0.1:1")


@probe("demo.na")
async def na_probe(ctx: ProbeContext):
    raise NotApplicable("no nginx on this host")


@probe("demo.crash")
async def crash_probe(ctx: ProbeContext):
    return {}["missing"]


@probe("demo.notjson")
async def notjson_probe(ctx: ProbeContext):
    return {"when": object()}


def test_deadline_ends_slow_probes_with_error_and_returns_in_time() -> None:
    started = time.monotonic()
    records = _gather([ok_probe, slow_probe], ["demo.ok", "demo.slow"], deadline=0.5)
    assert time.monotonic() - started < 3
    assert records["demo.ok"].state == "ok"
    assert records["demo.slow"].state == "error"
    assert "deadline" in records["demo.slow"].reason


def test_probe_timeout_is_an_error_with_reason() -> None:
    short = probe("demo.short", timeout=0.2)(slow_probe.fn)
    records = _gather([short], ["demo.short"])
    assert records["demo.short"].state == "error"
    assert "timed out after 0.2s" in records["demo.short"].reason


def test_probe_failures_become_error_records_never_exceptions() -> None:
    records = _gather([failing_probe, crash_probe, notjson_probe, na_probe],
                      ["demo.failing", "demo.crash", "demo.notjson", "demo.na"])
    assert records["demo.failing"].reason == "connection refused by 127.0.0.1:1"
    assert records["demo.crash"].state == "error" and "KeyError" in records["demo.crash"].reason
    assert records["demo.notjson"].state == "error" and "not JSON" in records["demo.notjson"].reason
    assert records["demo.na"].state == "not_applicable"


def test_dependencies_are_gathered_once_and_shared() -> None:
    calls = []

    @probe("demo.base")
    async def base(ctx: ProbeContext):
        calls.append(1)
        await asyncio.sleep(0.05)
        return 7

    @probe("demo.left")
    async def left(ctx: ProbeContext):
        return await ctx.evidence("demo.base") + 1

    @probe("demo.right")
    async def right(ctx: ProbeContext):
        return await ctx.evidence("demo.base") + 2

    records = _gather([base, left, right], ["demo.left", "demo.right"])
    assert (records["demo.left"].value, records["demo.right"].value) == (8, 9)
    assert len(calls) == 1


def test_dependency_failure_and_cycles_are_errors() -> None:
    @probe("demo.dependent")
    async def dependent(ctx: ProbeContext):
        return await ctx.evidence("demo.failing")

    @probe("demo.cycle-a")
    async def cycle_a(ctx: ProbeContext):
        return await ctx.evidence("demo.cycle-b")

    @probe("demo.cycle-b")
    async def cycle_b(ctx: ProbeContext):
        return await ctx.evidence("demo.cycle-a")

    records = _gather([failing_probe, dependent, cycle_a, cycle_b], ["demo.dependent", "demo.cycle-a"], deadline=3)
    assert "needs demo.failing, which failed" in records["demo.dependent"].reason
    assert "dependency cycle" in records["demo.cycle-a"].reason


def test_failed_or_inapplicable_evidence_makes_checks_error_or_skip_never_pass() -> None:
    profile = load_profile("seed-hardened")
    checks = [_check("demo.one", ("demo.failing",)), _check("demo.two", ("demo.na",)), _check("demo.three", ("demo.ok",))]
    records = {
        "demo.failing": ProbeRecord("demo.failing", "error", reason="timed out"),
        "demo.na": ProbeRecord("demo.na", "not_applicable", reason="no nginx"),
        "demo.ok": ProbeRecord("demo.ok", "ok", value={}),
    }
    results = {r.check_id: r for r in judge_all(checks, records, profile, frozenset(Vantage), NOW)}
    assert results["demo.one"].status is Status.ERROR and "timed out" in results["demo.one"].message
    assert results["demo.two"].status is Status.SKIP and "no nginx" in results["demo.two"].message
    assert results["demo.three"].status is Status.PASS


def test_check_of_unrequested_vantage_is_skip_with_reason() -> None:
    results = judge_all([_check("demo.one", ("demo.ok",))], {}, load_profile("seed-hardened"),
                        frozenset({Vantage.OUTSIDE}), NOW)
    assert results[0].status is Status.SKIP
    assert "--inside" in results[0].message


def test_a_check_that_yields_nothing_or_crashes_is_error() -> None:
    @check(id="demo.silent", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
           needs=("demo.ok",), rationale="r", passes_when="p", remediation="m", guide="g")
    def silent(ev, params):
        return []

    @check(id="demo.crashing", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
           needs=("demo.ok",), rationale="r", passes_when="p", remediation="m", guide="g")
    def crashing(ev, params):
        raise ZeroDivisionError("boom")

    records = {"demo.ok": ProbeRecord("demo.ok", "ok", value={})}
    results = judge_all([silent, crashing], records, load_profile("seed-hardened"), frozenset(Vantage), NOW)
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]


def test_incomplete_metadata_fails_at_definition() -> None:
    with pytest.raises(PluginError, match="rationale"):
        check(id="demo.bad", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
              needs=("x.y",), rationale=" ", passes_when="p", remediation="m", guide="g")
    with pytest.raises(PluginError, match="not of the form"):
        check(id="Bad Id", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
              needs=("x.y",), rationale="r", passes_when="p", remediation="m", guide="g")


def _plugin_tree(tmp_path: Path, modules: dict[str, str], entry_points: str = "", name: str = "fakeplug") -> None:
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, body in modules.items():
        (package / f"{name}.py").write_text(textwrap.dedent(body))
    if entry_points:
        info = tmp_path / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


CHECK_SOURCE = """
from auditor.checkapi import check, passed
from auditor.model import Severity, Vantage

@check(id="{id}", title="t", severity=Severity.LOW, area="demo", vantage=Vantage.INSIDE,
       needs=("config.registry",), rationale="r", passes_when="p", remediation="m", guide="g")
def judge(ev, params):
    yield passed("s", "ok")
"""


def test_duplicate_check_ids_fail_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin_tree(tmp_path, {"a": CHECK_SOURCE.format(id="demo.same"), "b": CHECK_SOURCE.format(id="demo.same")})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="duplicate check 'demo.same'"):
        plugins._load("fakeplug", "regaudit.none", Check, "id")


def test_third_party_checks_load_through_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin_tree(tmp_path, {"extra": CHECK_SOURCE.format(id="thirdparty.extra")},
                 "[regaudit.checks]\nextra = epplug.extra\n", name="epplug")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = plugins._load("auditor.checks", "regaudit.checks", Check, "id")
    assert "thirdparty.extra" in found
    assert "entry point extra" in found["thirdparty.extra"][1]
    assert "registry.upload-purging" in found
    sys.modules.pop("epplug.extra", None)
    sys.modules.pop("epplug", None)


def test_builtin_checks_need_only_installed_probes() -> None:
    catalog.validate_needs(plugins.load_checks(), plugins.load_probes())
    catalog.validate_needs(catalog.check_catalog(), catalog.probe_catalog())


def _profile_file(tmp_path: Path, body: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _result(check_id: str, status: Status, subject: str = "s", severity: Severity = Severity.HIGH) -> Result:
    return Result(check_id, status, severity, subject, "m")


def test_waivers_apply_until_they_expire(tmp_path: Path) -> None:
    path = _profile_file(tmp_path, """
        name: site
        extends: seed-hardened
        waivers:
          - {check: "registry.*", subject: "legacy/*", reason: "migration", owner: "sec", expires: "2026-12-31"}
    """)
    profile = load_profile(str(path))
    from auditor.runner import apply_waivers

    results = [_result("registry.log-json", Status.FAIL, "legacy/app"), _result("registry.log-json", Status.FAIL, "app")]
    before = apply_waivers(results, profile, NOW)
    assert [r.status for r in before] == [Status.WAIVED, Status.FAIL]
    assert before[0].waiver is not None and not before[0].waiver.expired
    after = apply_waivers(results, profile, dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert [r.status for r in after] == [Status.FAIL, Status.FAIL]
    assert after[0].waiver is not None and after[0].waiver.expired
    assert "waiver expired" in after[0].message


def test_errors_are_never_waived(tmp_path: Path) -> None:
    from auditor.runner import apply_waivers

    path = _profile_file(tmp_path, """
        name: site
        waivers: [{check: "*", reason: "r", owner: "o", expires: "2030-01-01"}]
    """)
    out = apply_waivers([_result("a.b", Status.ERROR)], load_profile(str(path)), NOW)
    assert out[0].status is Status.ERROR


def test_scoring_weights_error_not_passed_skip_not_applicable_and_critical_cap() -> None:
    metas = {c.id: c.meta for c in [
        _check("a.high", ("x.y",), Severity.HIGH, "a"), _check("a.low", ("x.y",), Severity.LOW, "a"),
        _check("b.medium", ("x.y",), Severity.MEDIUM, "b"), _check("b.skipped", ("x.y",), Severity.CRITICAL, "b"),
    ]}
    severities = {k: m.severity for k, m in metas.items()}
    results = [
        _result("a.high", Status.PASS), _result("a.low", Status.ERROR),
        _result("b.medium", Status.WARN), _result("b.skipped", Status.SKIP),
    ]
    scores = score(results, metas, severities, catalog_size=10)
    assert scores.overall == round(100 * (5 + 3) / (5 + 1 + 3), 1)
    areas = {a.area: a for a in scores.areas}
    assert areas["a"].score == round(100 * 5 / 6, 1)
    assert areas["b"].score == 100.0
    assert scores.judged == 3 and scores.coverage == 30.0
    assert scores.grade == "B"
    critical = score([_result("b.skipped", Status.FAIL)], metas, severities, 10)
    assert critical.grade == "F"


def test_exit_code_contract() -> None:
    ok = {"p": ProbeRecord("p", "ok", {})}
    medium_fail = [_result("a.b", Status.FAIL, severity=Severity.MEDIUM)]
    assert exit_code(medium_fail, Severity.MEDIUM, ok) == 1
    assert exit_code(medium_fail, Severity.CRITICAL, ok) == 0
    assert exit_code([_result("a.b", Status.ERROR, severity=Severity.HIGH)], Severity.HIGH, ok) == 1
    assert exit_code([_result("a.b", Status.WARN, severity=Severity.CRITICAL)], Severity.LOW, ok) == 0
    all_failed = {"p": ProbeRecord("p", "error", reason="unreachable")}
    assert exit_code([_result("a.b", Status.ERROR)], Severity.HIGH, all_failed) == 3
    assert exit_code(medium_fail, Severity.LOW, ok, baseline=frozenset({("a.b", "s")})) == 0


@pytest.mark.parametrize(("body", "message"), [
    ("name: x\nselect: [unclosed\n", "invalid YAML"),
    ("name: x\nseverity: {registry.log-json: urgent}\n", "at severity.registry.log-json"),
    ("name: x\nwaivers: [{check: a.b, reason: r, owner: o}]\n", "'expires' is a required property"),
    ("name: x\nwaivers: [{check: a.b, reason: r, owner: o, expires: 2026-02-30}]\n", "day is out of range"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("name: x\nextends: nope-profile\n", "unknown profile 'nope-profile'"),
    ("name: x\nbogus: 1\n", "Additional properties are not allowed"),
])
def test_bad_profiles_name_file_location_and_problem(tmp_path: Path, body: str, message: str) -> None:
    path = _profile_file(tmp_path, body)
    with pytest.raises(UsageError) as info:
        load_profile(str(path), plugins.load_checks())
    assert message in str(info.value)
    assert str(path) in str(info.value) or "nope-profile" in str(info.value)


def test_unknown_parameter_for_a_known_check_is_an_error(tmp_path: Path) -> None:
    path = _profile_file(tmp_path, "name: x\nparams: {registry.upload-purging: {max_age_days: 7}}\n")
    with pytest.raises(UsageError, match="params.registry.upload-purging.max_age_days: unknown parameter"):
        load_profile(str(path), plugins.load_checks())


def test_extends_merges_and_detects_loops(tmp_path: Path) -> None:
    _profile_file(tmp_path, "name: base\nskip: [registry.log-json]\nparams: {registry.upload-purging: {max_age_hours: 100}}\n",
                  "base.yaml")
    child = _profile_file(tmp_path, "name: child\nextends: base.yaml\nskip: [registry.headers]\n"
                          "params: {registry.upload-purging: {max_interval_hours: 12}}\n", "child.yaml")
    profile = load_profile(str(child))
    assert profile.skip == ("registry.log-json", "registry.headers")
    assert dict(profile.params["registry.upload-purging"]) == {"max_age_hours": 100, "max_interval_hours": 12}
    _profile_file(tmp_path, "name: a\nextends: b.yaml\n", "a.yaml")
    _profile_file(tmp_path, "name: b\nextends: a.yaml\n", "b.yaml")
    with pytest.raises(UsageError, match="extends loop"):
        load_profile(str(tmp_path / "a.yaml"))


def test_builtin_profiles_load_and_strict_extends_seed_hardened() -> None:
    checks = plugins.load_checks()
    for name in ("seed-hardened", "baseline", "strict"):
        load_profile(name, checks)
    strict = load_profile("strict")
    assert strict.warn_as_fail and strict.chain[-1] == "builtin:seed-hardened"


def test_strict_judges_warn_as_fail() -> None:
    checks = [plugins.load_checks()["registry.readonly-off"]]
    records = {"config.registry": ProbeRecord("config.registry", "ok", {
        "path": "c.yml", "config": {"version": "0.1", "storage": {"maintenance": {"readonly": {"enabled": True}}}}})}
    seed = judge_all(checks, records, load_profile("seed-hardened"), frozenset(Vantage), NOW)
    strict = judge_all(checks, records, load_profile("strict"), frozenset(Vantage), NOW)
    assert seed[0].status is Status.WARN and strict[0].status is Status.FAIL


def test_secrets_are_redacted_from_evidence() -> None:
    from auditor.runner import RunOptions, gather_evidence

    @probe("demo.leaky")
    async def leaky(ctx: ProbeContext):
        return {"http": {"secret": "s3cr3t-value"}, "note": f"sent {ctx.credentials.password.reveal()} to server"}

    creds = Credentials("auditor", Secret("hunter2-password"), "test")
    leaky_check = _check("demo.leak", ("demo.leaky",))
    evidence = asyncio.run(gather_evidence([leaky_check], {"demo.leaky": leaky}, Target(inside=True), creds,
                                           RunOptions()))
    dumped = str(evidence.to_json())
    assert "s3cr3t-value" not in dumped and "hunter2-password" not in dumped
    assert "<redacted>" in dumped
    assert "hunter2" not in repr(creds)
