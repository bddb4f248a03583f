"""registry.* config checks: success and failure fixtures, each naming what passes and what fails.

Fixtures live in tests/fixtures/registry/: guide-config.yml is the guide's config.yml verbatim;
every other file is that config with one defect.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditor.model import Status
from auditor.probes.registry_config import read_registry_config

from .helpers import FIXTURES, NOW, judge, records

CONFIG_CHECKS = [
    "registry.config-valid", "registry.log-json", "registry.delete-enabled", "registry.upload-purging",
    "registry.host-https", "registry.headers", "registry.health-check", "registry.debug-loopback",
    "registry.readonly-off",
]


def evidence_for(name: str | Path) -> dict:
    path = name if isinstance(name, Path) else FIXTURES / "registry" / name
    return records(config__registry=read_registry_config(str(path), "test"))


def only(check_id: str, fixture: str | Path):
    results = judge(check_id, evidence_for(fixture))
    assert len(results) == 1, results
    return results[0]


@pytest.mark.parametrize("check_id", CONFIG_CHECKS)
def test_guide_config_passes_every_config_check(check_id: str) -> None:
    assert only(check_id, "guide-config.yml").status is Status.PASS


def test_guide_config_token_config_is_skip_without_token_auth() -> None:
    result = only("registry.token-config", "guide-config.yml")
    assert result.status is Status.SKIP
    assert "no token authentication" in result.message


# (fixture, the one check it fails, what the evidence must mention)
DEFECTS = [
    ("purging-disabled.yml", "registry.upload-purging", Status.FAIL, "purging is disabled"),
    ("purging-long.yml", "registry.upload-purging", Status.FAIL, "age 720h exceeds 168h"),
    ("purging-dryrun.yml", "registry.upload-purging", Status.FAIL, "dryrun is not false"),
    ("text-debug-logs.yml", "registry.log-json", Status.FAIL, "formatter is 'text'; level is debug"),
    ("no-delete.yml", "registry.delete-enabled", Status.FAIL, "registry default"),
    ("http-host.yml", "registry.host-https", Status.FAIL, "is not an https URL"),
    ("no-headers.yml", "registry.headers", Status.FAIL, "does not set X-Content-Type-Options"),
    ("health-slow.yml", "registry.health-check", Status.FAIL, "interval '1m' is not <= 10s"),
    ("debug-exposed.yml", "registry.debug-loopback", Status.FAIL, "all interfaces"),
    ("readonly.yml", "registry.readonly-off", Status.WARN, "pushes fail with 405"),
    ("unknown-key.yml", "registry.config-valid", Status.WARN, "http.hosst"),
    ("invalid-level.yml", "registry.config-valid", Status.FAIL, "log.level"),
]


@pytest.mark.parametrize(("fixture", "failing", "status", "mention"), DEFECTS)
def test_each_defect_fails_exactly_its_check(fixture: str, failing: str, status: Status, mention: str) -> None:
    for check_id in CONFIG_CHECKS:
        result = only(check_id, fixture)
        if check_id == failing:
            assert result.status is status, result
            assert mention in result.message, result.message
            assert result.observed is not None and result.expected is not None
        else:
            assert result.status is Status.PASS, (check_id, result)


def test_partial_uploadpurging_section_is_invalid_and_fails_purging() -> None:
    valid = only("registry.config-valid", "purging-partial.yml")
    assert valid.status is Status.FAIL
    assert "missing age, dryrun" in valid.message and "panics" in valid.message
    purging = only("registry.upload-purging", "purging-partial.yml")
    assert purging.status is Status.FAIL
    assert "age is missing" in purging.message


def test_unparseable_config_fails_config_valid_and_errors_the_others() -> None:
    assert only("registry.config-valid", "not-yaml.yml").status is Status.FAIL
    other = only("registry.log-json", "not-yaml.yml")
    assert other.status is Status.ERROR
    assert "does not parse" in other.message


def test_defaults_are_applied_and_said() -> None:
    purging = only("registry.upload-purging", "minimal-defaults.yml")
    assert purging.status is Status.PASS
    assert "rests on registry defaults" in purging.message
    assert only("registry.delete-enabled", "minimal-defaults.yml").status is Status.FAIL
    assert only("registry.log-json", "minimal-defaults.yml").status is Status.FAIL
    assert only("registry.health-check", "minimal-defaults.yml").status is Status.FAIL
    assert only("registry.debug-loopback", "minimal-defaults.yml").status is Status.PASS


def test_debug_on_loopback_passes() -> None:
    assert only("registry.debug-loopback", "debug-loopback.yml").status is Status.PASS


def _bundle(path: Path, not_after: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365)).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _token_config(tmp_path: Path, realm: str, bundle: Path, autoredirect: bool = False) -> Path:
    guide = (FIXTURES / "registry" / "guide-config.yml").read_text()
    config = tmp_path / "config.yml"
    config.write_text(
        guide + f"auth:\n  token:\n    realm: {realm}\n    service: registry.example.com\n"
        f"    issuer: \"Registry Auth Service\"\n    rootcertbundle: {bundle}\n"
        f"    autoredirect: {'true' if autoredirect else 'false'}\n"
    )
    return config


def test_token_config_with_https_realm_and_valid_bundle_passes(tmp_path: Path) -> None:
    bundle = tmp_path / "auth-cert.pem"
    _bundle(bundle, NOW + dt.timedelta(days=300))
    config = _token_config(tmp_path, "https://auth.example.com/token", bundle)
    assert only("registry.token-config", config).status is Status.PASS


def test_token_config_http_realm_expired_bundle_and_autoredirect_fail(tmp_path: Path) -> None:
    bundle = tmp_path / "auth-cert.pem"
    _bundle(bundle, NOW - dt.timedelta(days=1))
    config = _token_config(tmp_path, "http://auth.example.com/token", bundle, autoredirect=True)
    result = only("registry.token-config", config)
    assert result.status is Status.FAIL
    assert "is not https" in result.message
    assert "expired" in result.message
    assert "autoredirect is true" in result.message


def test_token_config_missing_bundle_fails(tmp_path: Path) -> None:
    config = _token_config(tmp_path, "https://auth.example.com/token", tmp_path / "missing.pem")
    result = only("registry.token-config", config)
    assert result.status is Status.FAIL
    assert "does not exist" in result.message


def test_token_bundle_expiry_is_judged_at_the_audit_time(tmp_path: Path) -> None:
    bundle = tmp_path / "auth-cert.pem"
    _bundle(bundle, NOW + dt.timedelta(days=2))
    evidence = evidence_for(_token_config(tmp_path, "https://auth.example.com/token", bundle))
    assert judge("registry.token-config", evidence)[0].status is Status.PASS
    later = judge("registry.token-config", evidence, now=NOW + dt.timedelta(days=3))
    assert later[0].status is Status.FAIL
