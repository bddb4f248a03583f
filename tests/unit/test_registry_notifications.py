"""registry.notifications on recorded configs: success and failure fixtures, each naming what passes
and what fails (tests/fixtures/registry/notifications-*.yml), the profile's expect_notifications,
the redacted header, and the registry-config generator's steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.model import Result, Status
from auditor.plugins import load_checks
from auditor.probes.registry_config import read_registry_config
from auditor.profile import Profile, load_profile
from auditor.redact import redact
from auditor.remediation import registry_config
from auditor.remediation.model import Plan
from auditor.remediation.site import Site

from .helpers import FIXTURES, judge, records

CHECK = "registry.notifications"


def config(fixture: str) -> dict:
    return read_registry_config(str(FIXTURES / "registry" / fixture), "test")


def judged(fixture: str, profile: Profile | None = None) -> dict[str, Result]:
    results = judge(CHECK, records(config__registry=redact(config(fixture))), profile)
    return {r.subject.rpartition(" endpoint ")[2] if " endpoint " in r.subject else "-": r for r in results}


@pytest.fixture(scope="module")
def expecting(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    path = tmp_path_factory.mktemp("profile") / "continuous.yaml"
    path.write_text("name: continuous\nextends: seed-hardened\n"
                    "params:\n  registry.notifications: {expect_notifications: true}\n")
    return load_profile(str(path))


def test_https_and_loopback_endpoints_with_a_token_pass() -> None:
    results = judged("notifications-ok.yml")
    assert set(results) == {"regaudit-watch", "siem"}
    assert results["regaudit-watch"].status is Status.PASS
    assert "http://127.0.0.1:9471/events: http on loopback" in results["regaudit-watch"].message
    assert results["siem"].status is Status.PASS
    assert "https" in results["siem"].message
    assert results["siem"].observed == {"url": "https://events.example.com/registry", "authorization": True}


def test_the_token_never_reaches_evidence_or_results() -> None:
    facts = redact(config("notifications-ok.yml"))
    text = json.dumps(facts) + json.dumps([r.to_json() for r in judged("notifications-ok.yml").values()])
    assert "0123456789abcdef0123" not in text and "fedcba9876543210fedc" not in text
    assert facts["config"]["notifications"]["endpoints"][0]["headers"]["Authorization"] == ["<redacted>"]


def test_clear_text_and_missing_authorization_fail_and_a_disabled_endpoint_is_not_judged() -> None:
    results = judged("notifications-insecure.yml")
    listener, siem, old = results["listener"], results["siem"], results["old"]
    assert listener.status is Status.FAIL
    assert "sends events in clear over http to 10.0.5.20" in listener.message
    assert "sends no Authorization header" in listener.message
    assert siem.status is Status.FAIL and siem.message == "sends no Authorization header"
    assert siem.observed == {"url": "https://events.example.com/registry", "authorization": False}
    assert old.status is Status.SKIP and "disabled" in old.message


def test_no_endpoint_is_skip_unless_the_profile_expects_continuous_mode(expecting: Profile) -> None:
    [result] = judged("guide-config.yml").values()
    assert result.status is Status.SKIP
    assert "does not expect continuous mode" in result.message
    [result] = judged("guide-config.yml", expecting).values()
    assert result.status is Status.FAIL
    assert "the profile expects continuous mode" in result.message
    assert result.expected == "an enabled endpoint in notifications.endpoints"


def test_an_expected_endpoint_that_exists_passes(expecting: Profile) -> None:
    results = judged("notifications-ok.yml", expecting)
    assert {r.status for r in results.values()} == {Status.PASS}


@pytest.mark.parametrize(("endpoint", "mention"), [
    ({"name": "a", "url": "http://localhost:9471/events", "headers": {"authorization": ["Bearer x"]}}, None),
    ({"name": "a", "url": "http://[::1]:9471/events", "headers": {"Authorization": "Bearer x"}}, None),
    ({"name": "a", "url": "ftp://events.example.com/", "headers": {"Authorization": ["x"]}}, "neither https nor http"),
    ({"name": "a", "url": "https://u:p@events.example.com/", "headers": {"Authorization": ["x"]}},
     "carries credentials"),
    ({"name": "a", "url": "https://events.example.com/", "headers": {"Authorization": [""]}}, "no Authorization"),
    ({"name": "a"}, "has no url"),
])
def test_endpoint_forms(endpoint: dict, mention: str | None) -> None:
    facts = {"path": "/etc/docker/registry/config.yml", "config": {"notifications": {"endpoints": [endpoint]}}}
    [result] = judge(CHECK, records(config__registry=facts))
    if mention is None:
        assert result.status is Status.PASS, result
    else:
        assert result.status is Status.FAIL and mention in result.message, result


def test_malformed_endpoints_are_errors_not_passes() -> None:
    facts = {"path": "c.yml", "config": {"notifications": {"endpoints": {"name": "a"}}}}
    [result] = judge(CHECK, records(config__registry=facts))
    assert result.status is Status.ERROR and "not a list" in result.message
    facts = {"path": "c.yml", "config": {"notifications": {"endpoints": ["http://x"]}}}
    [result] = judge(CHECK, records(config__registry=facts))
    assert result.status is Status.ERROR and "not a mapping" in result.message


def test_an_unparsable_config_is_an_error() -> None:
    [result] = judge(CHECK, records(config__registry=config("not-yaml.yml")))
    assert result.status is Status.ERROR


@pytest.mark.parametrize("fixture", ["notifications-ok.yml", "notifications-insecure.yml"])
def test_the_fixtures_are_otherwise_the_guides_valid_config(fixture: str) -> None:
    for check_id in ("registry.config-valid", "registry.log-json", "registry.host-https"):
        [result] = judge(check_id, records(config__registry=config(fixture)))
        assert result.status is Status.PASS, (check_id, result)


def _site(path: Path, profile: Profile, target: dict) -> Site:
    facts = read_registry_config(str(path), "test")
    results = judge(CHECK, records(config__registry=redact(facts)), profile)
    return Site(records=records(config__registry=facts), results=results, profile=profile, checks=load_checks(),
                target=target)


def test_the_registry_config_generator_gives_steps_for_endpoints_it_cannot_fix() -> None:
    path = FIXTURES / "registry" / "notifications-insecure.yml"
    site = _site(path, load_profile("seed-hardened"), {"host": "registry.example.com"})
    plan = Plan()
    registry_config.generate(site, plan)
    [text] = [t for t in plan.texts if t.check == CHECK]
    assert text.generator == "registry-config"
    assert set(text.subjects) == {r.subject for r in site.failing(CHECK)} and len(text.subjects) == 2
    assert "sends events in clear over http to 10.0.5.20" in text.steps
    assert "Authorization: [Bearer TOKEN]" in text.steps and "--watch-endpoint" in text.steps
    assert CHECK not in plan.expected and all(CHECK not in f.checks for f in plan.files)


def test_the_generated_watch_endpoint_passes_the_check(tmp_path: Path, expecting: Profile) -> None:
    live = tmp_path / "config.yml"
    live.write_text((FIXTURES / "registry" / "guide-config.yml").read_text())
    token = tmp_path / "watch.token"
    token.write_text("0123456789abcdef-watch\n")
    site = _site(live, expecting, {"host": "registry.example.com", "watch_endpoint": {
        "url": "http://127.0.0.1:9471/events", "token_file": str(token)}})
    assert [r.status for r in site.results] == [Status.FAIL]
    plan = Plan()
    registry_config.generate(site, plan)
    [change] = plan.files
    assert CHECK in change.checks and CHECK in plan.expected
    assert not [t for t in plan.texts if t.check == CHECK]
    fixed = tmp_path / "fixed.yml"
    fixed.write_bytes(change.content)
    [result] = judge(CHECK, records(config__registry=redact(read_registry_config(str(fixed), "test"))), expecting)
    assert result.status is Status.PASS, result


def test_a_watch_endpoint_in_clear_to_another_host_is_not_claimed(tmp_path: Path, expecting: Profile) -> None:
    token = tmp_path / "watch.token"
    token.write_text("0123456789abcdef-watch\n")
    site = _site(FIXTURES / "registry" / "guide-config.yml", expecting, {"watch_endpoint": {
        "url": "http://10.0.5.20:9471/events", "token_file": str(token)}})
    plan = Plan()
    registry_config.generate(site, plan)
    assert CHECK not in plan.expected and [t.check for t in plan.texts if t.check == CHECK] == [CHECK]
