"""Every proxy shape the guide allows, audited for real: nginx alone (the registry's documentation
recipe), Apache alone (the guide's main path), each hardened and weak, and a freshly deployed
registry with nothing pushed. One lab per variant per session (tests/conftest.py fixtures), audited
the way test_lab_audit does it (outside from the outsider host, inside on the registry host, the two
evidence files judged together under the lab profile).

- hardened: scores 100, every applicable check judged, the rest skipped with their reasons;
- weak: fails exactly the checks of its defects file, the proxy checks naming the file and line;
- empty: passes the CI gate, the content checks skip with "no tags yet";
- remediate fixes a private copy of each weak variant, and the re-audit passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lab
import pytest
import yaml
from lab import selftest, variants

from .test_lab_audit import PROFILE, REPO, Audit, audit_lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DEFECTS = REPO / "tests" / "lab" / "defects"
CONTENT_CHECKS = {"signatures.present", "signatures.valid", "scans.present", "scans.fresh", "scans.digest-match",
                  "scans.severity"}
NOT_DEPLOYED = {"registry.token-config", "auth.token-service", "admission.policy", "container.runtime",
                "registry.notifications"}
APACHE_CHECKS = {"proxy.apache-tls", "proxy.apache-auth", "proxy.apache-proxy"}
NGINX_CHECKS = {"proxy.nginx-tls", "proxy.nginx-auth", "proxy.nginx-recipe", "proxy.nginx-body",
                "proxy.nginx-buffers", "proxy.nginx-timeouts", "proxy.forwarded-headers"}
TMPFS_CHECKS = {"tmpfs.mounted", "tmpfs.size", "tmpfs.persistent"}
FILE_LINE = re.compile(r"/[\w./-]+\.conf:\d+")


def _skipped(audit: Audit) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in audit.report["results"]:
        if r["status"] == "skip":
            out.setdefault(r["check"], []).append(r["message"])
    # a check is skipped when every result of it is
    return {c: m for c, m in out.items() if audit.report["scores"]["checks"].get(c) == "skip"}


def _assert_hardened(audit: Audit, expected_skips: set[str]) -> dict[str, list[str]]:
    report = audit.report
    bad = [r for r in report["results"] if r["status"] not in ("pass", "skip")]
    assert bad == [], json.dumps(bad, indent=1)[:4000]
    assert report["scores"]["overall"] == 100.0 and audit.evaluated.returncode == 0
    skipped = _skipped(audit)
    assert set(skipped) == expected_skips, {"extra": sorted(set(skipped) - expected_skips),
                                            "missing": sorted(expected_skips - set(skipped))}
    assert all(all(m for m in messages) for messages in skipped.values())
    return skipped


def _defects(variant: str) -> list[dict[str, Any]]:
    return yaml.safe_load((DEFECTS / f"{variant}.yaml").read_text())["defects"]


def _assert_weak(audit: Audit, variant: str) -> None:
    defects = _defects(variant)
    expected = set().union(*(set(d["checks"]) for d in defects))
    failing = audit.failing_checks()
    assert failing == expected, {"missing": sorted(expected - failing), "extra": sorted(failing - expected)}
    assert [r for r in audit.report["results"] if r["status"] == "error"] == []
    assert audit.evaluated.returncode == 1
    base = str(lab.load(variant).base_dir)
    for r in audit.report["results"]:
        if r["status"] != "fail":
            continue
        if r["check"].startswith("proxy."):  # the inside proxy checks name the config file and line to change
            assert FILE_LINE.search(r["message"]) and base in r["message"], r
        if r["check"].startswith("files."):  # the files checks name the file
            assert r["subject"].startswith(base), r


@pytest.fixture(scope="module")
def nginx_audit(lab_nginx, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    return audit_lab(lab_nginx, tmp_path_factory.mktemp("nginx"))


@pytest.fixture(scope="module")
def apache_audit(lab_apache, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    return audit_lab(lab_apache, tmp_path_factory.mktemp("apache"))


def test_nginx_alone_hardened_scores_100_and_skips_only_apache(nginx_audit: Audit, lab_nginx) -> None:
    skipped = _assert_hardened(nginx_audit, NOT_DEPLOYED | APACHE_CHECKS)
    assert all("no Apache found" in m for c in APACHE_CHECKS for m in skipped[c])
    results = nginx_audit.report["results"]
    judged = {r["check"] for r in results if r["status"] == "pass"}
    assert {"proxy.nginx-tls", "proxy.nginx-auth", "proxy.nginx-recipe", "files.htpasswd", "files.tls-key",
            "tmpfs.mounted", "tmpfs.size"} <= judged
    htpasswd = [r for r in results if r["check"] == "files.htpasswd"]
    assert [r["subject"] for r in htpasswd] == [str(Path(lab_nginx.base_dir) / "auth" / "htpasswd")]


def test_apache_alone_hardened_scores_100_and_says_what_applies_without_nginx(apache_audit: Audit) -> None:
    skipped = _assert_hardened(apache_audit, NOT_DEPLOYED | NGINX_CHECKS | TMPFS_CHECKS)
    for check in TMPFS_CHECKS:
        assert all("no nginx buffers requests" in m and "proxy.apache-proxy" in m for m in skipped[check]), skipped
    judged = {r["check"] for r in apache_audit.report["results"] if r["status"] == "pass"}
    assert APACHE_CHECKS | {"files.htpasswd", "files.tls-key"} <= judged


@pytest.mark.parametrize("variant", ["nginx-weak", "apache-weak"])
def test_weak_shape_fails_exactly_its_seeded_defects(variant: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    info = request.getfixturevalue("lab_nginx_weak" if variant == "nginx-weak" else "lab_apache_weak")
    _assert_weak(audit_lab(info, tmp_path), variant)


def test_a_fresh_empty_registry_passes_the_ci_gate(lab_empty, tmp_path: Path) -> None:
    audit = audit_lab(lab_empty, tmp_path)
    skipped = _assert_hardened(audit, NOT_DEPLOYED | CONTENT_CHECKS | {"proxy.nginx-tls", "proxy.nginx-auth",
                                                                       "proxy.nginx-recipe"})
    assert all("no tags yet" in m or "no repository yet" in m for c in CONTENT_CHECKS for m in skipped[c])
    # both vantages' own CI gates (default --fail-on) pass too
    assert audit.outside.returncode == 0, audit.outside.stdout[-2000:]
    assert audit.inside.returncode == 0, audit.inside.stdout[-2000:]
    inside = json.loads((audit.out / "inside.json").read_text())
    content = inside["probes"]["registry.content"] if "probes" in inside else None
    if isinstance(content, dict) and content.get("value"):
        assert content["value"]["tags"] == []


FIXTURES = {"nginx": "lab_nginx", "nginx-weak": "lab_nginx_weak", "apache": "lab_apache",
            "apache-weak": "lab_apache_weak", "empty": "lab_empty"}


@pytest.mark.parametrize("variant", sorted(FIXTURES))
def test_selftest_of_each_shape_verifies_its_properties_and_every_seeded_defect(
        variant: str, request: pytest.FixtureRequest) -> None:
    info = request.getfixturevalue(FIXTURES[variant])
    report = selftest.run(info)
    assert report.results and report.ok, report.render()
    assert not [r.name for r in report.results if r.skipped]
    verified = {r.defect for r in report.results if r.defect and r.ok}
    expected = {d["id"] for d in _defects(variant)} if (DEFECTS / f"{variant}.yaml").exists() else set()
    assert verified == expected


# ---- remediation on private copies (apply mutates the deployment) ----------------------------------


@pytest.fixture(scope="module", params=["nginx-weak", "apache-weak"])
def remedy_copy(request: pytest.FixtureRequest) -> Iterator[Any]:
    reason = lab.available()
    if reason:
        pytest.skip(f"lab: {reason}")
    base = variants.VARIANTS[request.param]
    name = f"{request.param}-remedy{os.getpid()}"
    variants.VARIANTS[name] = dataclasses.replace(base, name=name, prefix=f"{base.prefix}r{os.getpid() % 100000}-")
    info = lab.up(name, content=True, recreate=True)
    try:
        yield request.param, info
    finally:
        if os.environ.get("REGAUDIT_LAB_KEEP") != "1":
            lab.down(name)
        variants.VARIANTS.pop(name, None)


def test_remediate_fixes_the_weak_shape_and_the_reaudit_passes(remedy_copy: Any, tmp_path: Path) -> None:
    variant, info = remedy_copy
    raw = info.raw
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
           "REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    argv = ["ip", "netns", "exec", raw["namespaces"]["registry"], "regaudit", "remediate", "--apply", raw["url"],
            "--ca-bundle", raw["tls"]["ca"], "--fstab", raw["fstab"], "--scan-dir", raw["scan_dir"],
            "--cosign-key", raw["cosign"]["public_key"], "--username", raw["auth"]["username"],
            "--password-file", raw["auth"]["password_file"], "--profile", str(PROFILE)]
    applied = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert applied.returncode == 0 and "re-audit passed" in applied.stdout, applied.stdout + applied.stderr
    expected = set().union(*(set(d["checks"]) for d in _defects(variant)))
    fixed = set(re.search(r"re-audit passed: (.+)", applied.stdout).group(1).strip().split(", "))  # type: ignore
    assert fixed == expected, {"not fixed": sorted(expected - fixed)}
    again = audit_lab(info, tmp_path / "again")
    assert again.failing_checks() == set(), again.failing_checks()
    assert again.report["scores"]["overall"] == 100.0
