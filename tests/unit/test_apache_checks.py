"""proxy.apache-* on fixtures: each fixture (tests/fixtures/apache/<case>/) names what passes and fails.

Evidence comes from the real `config.apache` probe (explicit --apache-config; ServerRoot is the
fixture's directory; the cipher string is expanded by the real `openssl ciphers -s -v`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from auditor.checks.proxy.apache import apache_tls

from auditor.checkapi import Evidence, ProbeRecord
from auditor.errors import NotApplicable
from auditor.model import JSON, Status
from auditor.probes.proxy import config_apache
from auditor.target import Target

from . import helpers
from .helpers import FIXTURES, NOW, judge

APACHE_CHECKS = ["proxy.apache-tls", "proxy.apache-proxy", "proxy.apache-auth"]
NO_TOKEN = {"path": "/etc/docker/registry/config.yml", "config": {"auth": {"htpasswd": {"path": "/x"}}}}
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def run_probe(target: Target, evidence: dict[str, JSON] | None = None) -> JSON:
    """Run config_apache through the real probe API; other evidence comes from `evidence`."""
    return helpers.run_probe(config_apache, target, evidence)


def apache_value(case: str, url: str = "https://registry.example.com", conf: str = "apache2.conf") -> Any:
    path = FIXTURES / "apache" / case / conf
    return run_probe(Target(url=url, paths={"apache_config": str(path)}))


def records(value: Any, registry: Any = NO_TOKEN) -> dict[str, ProbeRecord]:
    out = {"config.apache": ProbeRecord("config.apache", "ok", value)}
    if registry is not None:
        out["config.registry"] = ProbeRecord("config.registry", "ok", registry)
    return out


def verdict(check_id: str, case: str, registry: Any = NO_TOKEN, **kwargs: Any) -> tuple[Status, str]:
    results = judge(check_id, records(apache_value(case, **kwargs), registry))
    assert len(results) == 1, results
    return results[0].status, results[0].message


@needs_openssl
@pytest.mark.parametrize("check_id", APACHE_CHECKS)
def test_debian_layout_registry_site_passes(check_id: str) -> None:
    status, message = verdict(check_id, "debian")
    assert status is Status.PASS, message


def test_debian_layout_selects_the_registry_vhost_not_the_default() -> None:
    value = apache_value("debian")
    assert value["vhost"]["where"].endswith("sites-enabled/registry.conf:4")
    assert value["selection"] == "ServerName registry.example.com matches registry.example.com"
    assert value["vhost"]["ssl_protocol"]["value"] == "-all +TLSv1.2 +TLSv1.3"
    assert value["auth_user_file"]["path"].endswith("fixtures/apache/debian/htpasswd")
    assert "status_module" not in value["modules"] and "ssl_module" in value["modules"]


def test_server_alias_wildcard_selects_the_registry_vhost() -> None:
    value = apache_value("debian", url="https://registry-eu.example.com")
    assert value["selection"] == "ServerAlias registry-*.example.com matches registry-eu.example.com"


def test_unknown_host_gets_apache_default_vhost_for_443() -> None:
    value = apache_value("debian", url="https://elsewhere.example.com")
    assert value["vhost"]["server_name"] == "intranet.example.com"
    assert "first vhost on port 443" in value["selection"]


@needs_openssl
@pytest.mark.parametrize("check_id", APACHE_CHECKS)
def test_guide_vhost_with_errata_1_passes_when_its_htpasswd_exists(check_id: str) -> None:
    value = apache_value("guide")
    assert value["auth_user_file"]["path"] == "/etc/registry/htpasswd"
    # recorded on a host that has the guide's htpasswd (this machine has none at that path)
    value["auth_user_file"] = {"path": "/etc/registry/htpasswd", "exists": True, "is_file": True, "mode": "0640"}
    results = judge(check_id, records(value))
    assert [r.status for r in results] == [Status.PASS], results[0].message


def test_guide_vhost_without_its_htpasswd_fails_apache_auth() -> None:
    value = apache_value("guide")
    if value["auth_user_file"].get("exists"):
        pytest.skip("this machine has /etc/registry/htpasswd")
    results = judge("proxy.apache-auth", records(value))
    assert results[0].status is Status.FAIL
    assert "AuthUserFile /etc/registry/htpasswd does not exist" in results[0].message


@needs_openssl
def test_weak_lab_tls_lines_fail_apache_tls() -> None:
    status, message = verdict("proxy.apache-tls", "weak-tls")
    assert status is Status.FAIL
    assert "enables TLSv1, TLSv1.1" in message
    assert "ECDHE-RSA-AES128-SHA" in message and "AES128-SHA" in message


@needs_openssl
def test_ssl_settings_inherited_from_server_level_pass_apache_tls() -> None:
    status, message = verdict("proxy.apache-tls", "ssl-inherited")
    assert status is Status.PASS, message
    assert apache_value("ssl-inherited")["vhost"]["ssl_engine"]["level"] == "global"


@needs_openssl
def test_missing_ssl_engine_and_debian_cipher_default_fail_apache_tls() -> None:
    status, message = verdict("proxy.apache-tls", "ssl-engine-off")
    assert status is Status.FAIL
    assert "SSLEngine is off (default)" in message
    assert "HIGH:!aNULL" in message


def test_cipher_string_without_openssl_is_judged_only_when_explicit() -> None:
    value = apache_value("guide")
    value["cipher_expansion"] = {"string": "x", "error": "openssl is not installed"}
    value["auth_user_file"] = {"path": "/etc/registry/htpasswd", "exists": True}
    assert judge("proxy.apache-tls", records(value))[0].status is Status.PASS
    value["vhost"]["ssl_cipher_suite"]["value"] = "HIGH:!aNULL"
    result = judge("proxy.apache-tls", records(value))[0]
    assert result.status is Status.ERROR and "cannot expand" in result.message


def test_weak_lab_require_all_granted_fails_apache_auth() -> None:
    status, message = verdict("proxy.apache-auth", "open-v2")
    assert status is Status.FAIL
    assert "open-v2/apache2.conf:35) lets everyone in on /v2/, /v2/_catalog, /v2/myapp/backend/blobs/uploads/" in message
    assert message.startswith("`Require all granted` (")


def test_later_location_opening_catalog_fails_apache_auth() -> None:
    status, message = verdict("proxy.apache-auth", "catalog-open")
    assert status is Status.FAIL
    assert message.startswith("`Require all granted` (") and message.endswith(
        "catalog-open/apache2.conf:38) lets everyone in on /v2/_catalog")


def test_auth_inside_ifmodule_of_an_unloaded_module_fails_apache_auth() -> None:
    value = apache_value("auth-module-missing")
    assert any("mod_auth_basic.c> is false" in s for s in value["skipped_sections"])
    status, message = verdict("proxy.apache-auth", "auth-module-missing")
    assert status is Status.FAIL and "no AuthType" in message


def test_missing_auth_user_file_fails_apache_auth() -> None:
    status, message = verdict("proxy.apache-auth", "missing-htpasswd")
    assert status is Status.FAIL and "does-not-exist/htpasswd does not exist" in message


def test_token_auth_in_the_registry_passes_apache_auth_without_location() -> None:
    token = {"path": "/etc/docker/registry/config.yml", "config": {"auth": {"token": {"realm": "https://a/t"}}}}
    assert verdict("proxy.apache-auth", "token-registry", registry=token)[0] is Status.PASS
    assert verdict("proxy.apache-auth", "token-registry")[0] is Status.FAIL


def test_no_location_auth_and_unreadable_registry_config_is_error() -> None:
    value = apache_value("token-registry")
    evidence = records(value, registry=None)
    evidence["config.registry"] = ProbeRecord("config.registry", "error", reason="permission denied")
    result = judge("proxy.apache-auth", evidence)[0]
    assert result.status is Status.ERROR and "permission denied" in result.message


def test_proxy_defaults_fail_apache_proxy_naming_each() -> None:
    status, message = verdict("proxy.apache-proxy", "proxy-defaults")
    assert status is Status.FAIL
    for part in ("lacks nocanon", "X-Forwarded-Proto", "proxy timeout 300.0s (global (Timeout",
                 "LimitRequestBody unset for /v2/: httpd's default is 1073741824 bytes"):
        assert part in message, part


def test_remote_upstream_fails_apache_proxy() -> None:
    status, message = verdict("proxy.apache-proxy", "remote-upstream")
    assert status is Status.FAIL and "http://10.0.0.5:5000/ is not a loopback address" in message


def test_location_body_limit_fails_apache_proxy() -> None:
    status, message = verdict("proxy.apache-proxy", "location-body-limit")
    assert status is Status.FAIL and "LimitRequestBody 10485760 for /v2/" in message


@pytest.mark.parametrize("check_id", APACHE_CHECKS)
def test_no_443_vhost_skips(check_id: str) -> None:
    status, message = verdict(check_id, "plain-only")
    assert status is Status.SKIP
    assert "no <VirtualHost> listens on port 443" in message


def test_no_apache_discovered_is_not_applicable_and_checks_skip() -> None:
    with pytest.raises(NotApplicable, match="no Apache found"):
        run_probe(Target(inside=True), {"host.discovery": {"nginx": None, "apache": None}})
    evidence = {"config.apache": ProbeRecord("config.apache", "not_applicable", reason="no Apache found: none"),
                "config.registry": ProbeRecord("config.registry", "ok", NO_TOKEN)}
    for check_id in APACHE_CHECKS:
        assert [r.status for r in judge(check_id, evidence)] == [Status.SKIP]


@pytest.mark.skipif(shutil.which("apache2ctl") is None, reason="apache2ctl is not installed")
def test_discovered_running_apache_is_cross_checked_with_apache2ctl(tmp_path: Path) -> None:
    root = tmp_path / "apache2"
    shutil.copytree(FIXTURES / "apache" / "debian", root, symlinks=True)
    env = {"APACHE_RUN_DIR": str(tmp_path), "APACHE_LOG_DIR": str(tmp_path), "APACHE_LOCK_DIR": str(tmp_path),
           "APACHE_PID_FILE": str(tmp_path / "pid"), "APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data"}
    discovery = {"apache": {"pid": 4343, "config": str(root / "apache2.conf"), "server_root": str(root),
                            "defines": [], "env": env, "config_source": "command line of Apache pid 4343 (-f)"}}
    value = run_probe(Target(url="https://registry.example.com", inside=True), {"host.discovery": discovery})
    assert value["running"] is True and value["server_root"] == str(root)
    assert value["apache2ctl"]["S"]["exit_code"] == 0, value["apache2ctl"]
    assert value["apache2ctl_agrees"] == {"files_agree": True, "files_only_apache_read": [],
                                          "files_only_parser_read": [], "vhost_known_to_apache": True}


@needs_openssl
def test_allowlist_accepts_iana_spelling_and_failures_name_weaknesses() -> None:
    value = apache_value("weak-tls")
    value["vhost"]["ssl_protocol"] = {"value": "-all +TLSv1.2", "args": ["-all", "+TLSv1.2"], "level": "vhost"}
    result = judge("proxy.apache-tls", records(value))[0]
    assert result.status is Status.FAIL
    assert "AES128-SHA (CBC, no forward secrecy)" in result.message
    assert "ECDHE-ECDSA-AES256-GCM-SHA384" not in result.message.split("allowlist:")[1]
    iana = ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
    params = {"allowed_protocols": ["TLSv1.2", "TLSv1.3"], "allowed_tls12_ciphers": iana}
    evidence = Evidence(records(apache_value("guide")), NOW)
    assert [o.status for o in apache_tls.judge(evidence, params)] == [Status.PASS]


def test_hsts_shares_the_nginx_parameters_and_is_judged_only_when_the_profile_asks(tmp_path: Path) -> None:
    from auditor.profile import load_profile

    profile_file = tmp_path / "hsts.yaml"
    profile_file.write_text("name: hsts\nextends: seed-hardened\nparams:\n"
                            "  proxy.apache-tls: {require_hsts: true, hsts_min_max_age: 31536000}\n")
    strict = load_profile(str(profile_file))
    guide = (FIXTURES / "apache" / "guide" / "apache2.conf").read_text()
    assert judge("proxy.apache-tls", records(apache_value("guide")))[0].status is Status.PASS
    results = judge("proxy.apache-tls", records(apache_value("guide")), strict)
    assert results[0].status is Status.FAIL and "no Strict-Transport-Security header" in results[0].message
    with_hsts = tmp_path / "apache2.conf"
    with_hsts.write_text(guide.replace('    RequestHeader set X-Forwarded-Proto "https"',
                                       '    RequestHeader set X-Forwarded-Proto "https"\n'
                                       '    Header always set Strict-Transport-Security "max-age=63072000"'))
    value = run_probe(Target(url="https://registry.example.com", paths={"apache_config": str(with_hsts)}))
    results = judge("proxy.apache-tls", records(value), strict)
    assert results[0].status is Status.PASS, results[0].message
