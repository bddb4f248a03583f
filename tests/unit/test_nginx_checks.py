"""proxy.nginx-* and proxy.forwarded-headers on fixtures: each fixture names what passes and fails.

Evidence is produced by the real `config.nginx` probe on tests/fixtures/nginx/<case>/nginx.conf
(explicit --nginx-config, so crossplane parses the file), then judged under seed-hardened.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from auditor.checkapi import ProbeRecord
from auditor.errors import NotApplicable
from auditor.model import JSON, Status
from auditor.probes.proxy import config_nginx
from auditor.target import Target

from . import helpers
from .helpers import FIXTURES, judge

NGINX_CHECKS = ["proxy.nginx-body", "proxy.nginx-buffers", "proxy.nginx-timeouts", "proxy.forwarded-headers"]


def run_probe(target: Target, evidence: dict[str, JSON] | None = None) -> JSON:
    """Run config_nginx through the real probe API; other evidence comes from `evidence`."""
    return helpers.run_probe(config_nginx, target, evidence)


def nginx_evidence(case: str, **extra: Any) -> dict[str, ProbeRecord]:
    path = FIXTURES / "nginx" / case / "nginx.conf"
    value = run_probe(Target(paths={"nginx_config": str(path)}))
    records = {"config.nginx": ProbeRecord("config.nginx", "ok", value)}
    for name, facts in extra.items():
        records[name.replace("__", ".")] = ProbeRecord(name.replace("__", "."), "ok", facts)
    return records


def verdict(check_id: str, case: str, **extra: Any) -> tuple[Status, str]:
    results = judge(check_id, nginx_evidence(case, **extra))
    assert len(results) == 1, results
    return results[0].status, results[0].message


@pytest.mark.parametrize("check_id", NGINX_CHECKS)
def test_guide_block_passes_every_nginx_check(check_id: str) -> None:
    status, message = verdict(check_id, "guide")
    assert status is Status.PASS, message


def test_guide_block_listen_80_is_reported_as_plaintext_v2_listener() -> None:
    value = nginx_evidence("guide")["config.nginx"].value
    assert value["plaintext_v2_listeners"] == [{"server": value["registry_servers"][0]["where"], "listen": "80"}]


@pytest.mark.parametrize("check_id", NGINX_CHECKS)
def test_debian_layout_with_http_level_tuning_passes(check_id: str) -> None:
    status, message = verdict(check_id, "debian")
    assert status is Status.PASS, message


def test_debian_layout_reports_inherited_levels_and_temp_paths() -> None:
    value = nginx_evidence("debian")["config.nginx"].value
    server = value["registry_servers"][0]
    assert server["where"].endswith("sites-enabled/registry:5")
    assert server["directives"]["proxy_read_timeout"]["level"] == "http"
    assert server["directives"]["proxy_read_timeout"]["where"].endswith("conf.d/registry-tuning.conf:9")
    assert server["proxy_set_header"]["level"] == "server"
    assert value["proxy_temp_path"] == "/var/cache/nginx/proxy_temp"
    assert value["client_body_temp_path"] == "/var/cache/nginx/client_temp"
    assert value["plaintext_v2_listeners"] == []
    assert [o["listen"] for o in value["other_servers"]] == [["80 default_server", "[::]:80 default_server"]]


def test_body_limit_inherited_from_http_fails_nginx_body() -> None:
    status, message = verdict("proxy.nginx-body", "body-limit")
    assert status is Status.FAIL
    assert "10m (http" in message


def test_regex_upload_location_with_limit_fails_nginx_body() -> None:
    status, message = verdict("proxy.nginx-body", "regex-uploads")
    assert status is Status.FAIL
    assert "512m (location" in message


def test_short_timeouts_fail_nginx_timeouts_naming_each() -> None:
    status, message = verdict("proxy.nginx-timeouts", "short-timeouts")
    assert status is Status.FAIL
    assert "proxy_read_timeout 60s (server" in message
    assert "proxy_send_timeout 60s (default)" in message
    assert "proxy_connect_timeout 75s" in message


def test_short_timeouts_fixture_passes_the_other_checks() -> None:
    for check_id in ("proxy.nginx-body", "proxy.nginx-buffers", "proxy.forwarded-headers"):
        assert verdict(check_id, "short-timeouts")[0] is Status.PASS, check_id


def test_small_buffers_fail_nginx_buffers() -> None:
    status, message = verdict("proxy.nginx-buffers", "small-buffers")
    assert status is Status.FAIL
    for part in ("proxy_buffering off", "proxy_buffer_size 4k", "proxy_buffers 4 4k", "proxy_busy_buffers_size",
                 "proxy_temp_path is not set", "proxy_max_temp_file_size 1024m (default)"):
        assert part in message, part


def test_largest_layer_above_temp_cap_fails_nginx_buffers() -> None:
    layout = {"largest_layer": {"bytes": 5 * 1024**3, "repository": "ml/model", "tag": "v1"}}
    status, message = verdict("proxy.nginx-buffers", "guide", storage__layout=layout)
    assert status is Status.FAIL
    assert "proxy_max_temp_file_size 4096m" in message
    status, _ = verdict("proxy.nginx-buffers", "guide", storage__layout={"largest_layer": {"bytes": 150 * 1024**2}})
    assert status is Status.PASS


def test_temp_cap_is_judged_against_the_largest_layer_else_the_guide() -> None:
    status, message = verdict("proxy.nginx-buffers", "small-buffers",
                              storage__layout={"largest_layer": {"bytes": 150 * 1024**2}})
    assert status is Status.FAIL and "proxy_max_temp_file_size" not in message
    status, message = verdict("proxy.nginx-buffers", "small-buffers")
    assert "proxy_max_temp_file_size 1024m (default) < 4294967296 bytes" in message


def test_location_header_replaces_server_headers_fails_forwarded_headers() -> None:
    status, message = verdict("proxy.forwarded-headers", "headers-overridden")
    assert status is Status.FAIL
    assert "X-Real-IP, X-Forwarded-For, X-Forwarded-Proto" in message
    assert "location level" in message


def test_nginx_not_proxying_the_registry_skips_with_reason() -> None:
    for check_id in NGINX_CHECKS:
        status, message = verdict(check_id, "not-registry")
        assert status is Status.SKIP, check_id
        assert "127.0.0.1:9000" in message


def test_registry_addr_from_registry_config_decides_the_upstream() -> None:
    registry = {"config": {"http": {"addr": ":9000"}}}
    value = run_probe(Target(paths={"nginx_config": str(FIXTURES / "nginx" / "not-registry" / "nginx.conf")}),
                      {"config.registry": registry})
    assert value["registry_address"]["port"] == 9000
    assert len(value["registry_servers"]) == 1


def test_no_nginx_discovered_is_not_applicable() -> None:
    with pytest.raises(NotApplicable, match="no nginx found"):
        run_probe(Target(inside=True), {"host.discovery": {"nginx": None, "apache": None}})


def test_not_deployed_nginx_makes_checks_skip() -> None:
    records = {"config.nginx": ProbeRecord("config.nginx", "not_applicable", reason="no nginx found: none running")}
    for check_id in NGINX_CHECKS:
        results = judge(check_id, records)
        assert [r.status for r in results] == [Status.SKIP]
        assert "no nginx found" in results[0].message


def test_failed_probe_makes_checks_error_not_pass() -> None:
    records = {"config.nginx": ProbeRecord("config.nginx", "error", reason="cannot read")}
    assert [r.status for r in judge("proxy.nginx-body", records)] == [Status.ERROR]


def test_variable_proxy_pass_is_an_error_not_a_skip(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen 127.0.0.1:8080; set $backend 127.0.0.1:5000;\n"
                    "location /v2/ { proxy_pass http://$backend; } } }\n")
    value = run_probe(Target(paths={"nginx_config": str(conf)}))
    results = judge("proxy.nginx-body", {"config.nginx": ProbeRecord("config.nginx", "ok", value)})
    assert [r.status for r in results] == [Status.ERROR]
    assert "resolved only at request time" in results[0].message


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_discovered_running_nginx_is_read_through_nginx_t(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"  fastcgi_temp_path {tmp_path}/f; uwsgi_temp_path {tmp_path}/u; scgi_temp_path {tmp_path}/s;\n"
        "  server { listen 127.0.0.1:18081; client_max_body_size 0;\n"
        "    location /v2/ { proxy_pass http://127.0.0.1:5000; } } }\n")
    discovery = {"nginx": {"pid": 4242, "config": str(conf), "prefix": str(tmp_path),
                           "config_source": "command line of nginx master pid 4242 (-c)"}}
    value = run_probe(Target(inside=True), {"host.discovery": discovery})
    assert value["method"] == "nginx -T (effective config of the running nginx)", value["nginx_t_error"]
    assert (value["running"], value["pid"], value["source"]) == (True, 4242, discovery["nginx"]["config_source"])
    assert value["client_body_temp_path"] == f"{tmp_path}/body"
    conf.write_text("events {}\nhttp { this is not nginx; }\n")
    broken = run_probe(Target(inside=True), {"host.discovery": discovery})
    assert broken["method"] == "crossplane (file)" and broken["nginx_t_error"]


@pytest.mark.parametrize("check_id", NGINX_CHECKS)
def test_tls_frontend_with_included_location_settings_passes(check_id: str) -> None:
    status, message = verdict(check_id, "tls-frontend")
    assert status is Status.PASS, message


def test_tls_frontend_evidence_names_keys_and_no_plaintext_v2() -> None:
    value = nginx_evidence("tls-frontend")["config.nginx"].value
    assert [s["ssl_certificate_key"] for s in value["registry_servers"]] == [
        ["/etc/ssl/private/registry.example.com.key"]]
    assert value["plaintext_v2_listeners"] == []
    assert [lst["ssl"] for lst in value["registry_servers"][0]["listen"]] == [True, True]
    assert value["registry_servers"][0]["directives"]["proxy_read_timeout"]["where"].endswith(
        "snippets/registry-proxy.conf:7")
    assert value["proxy_temp_path"] == "/run/nginx-tmpfs/proxy"
