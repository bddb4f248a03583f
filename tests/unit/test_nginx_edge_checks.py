"""proxy.nginx-tls, proxy.nginx-auth, proxy.nginx-recipe (nginx terminating TLS, the registry's
documentation recipe) on configs written here: the real `config.nginx` probe parses them (crossplane,
includes, `openssl ciphers` expansion), the checks judge under seed-hardened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.checkapi import ProbeRecord
from auditor.model import Status
from auditor.probes.files import htpasswd_paths
from auditor.probes.proxy import config_nginx
from auditor.profile import load_profile
from auditor.target import Target

from . import helpers
from .helpers import judge

EDGE = ("proxy.nginx-tls", "proxy.nginx-auth", "proxy.nginx-recipe")
HTPASSWD = "alice:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n"
RECIPE_SERVER = """
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384;
        ssl_prefer_server_ciphers on;
        client_max_body_size 0;
        chunked_transfer_encoding on;
"""
RECIPE_LOCATION = """
            auth_basic "Registry realm";
            auth_basic_user_file {htpasswd};
            add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;
            proxy_pass http://docker-registry;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 900;
"""


def write_conf(tmp: Path, server: str = RECIPE_SERVER, location: str = RECIPE_LOCATION, extra_locations: str = "",
               http: str = "", listen: str = "443 ssl", files: dict[str, str] | None = None) -> Path:
    """An nginx.conf after the registry's recipe, with the given parts replaced."""
    htpasswd = tmp / "nginx.htpasswd"
    htpasswd.write_text(HTPASSWD)
    htpasswd.chmod(0o640)
    for name, text in (files or {}).items():
        (tmp / name).write_text(text)
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
events {{ worker_connections 64; }}
http {{
    upstream docker-registry {{ server 127.0.0.1:5000; }}
    map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {{
        '' 'registry/2.0';
    }}
{http}
    server {{
        listen {listen};
        server_name registry.example.com;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
{server}
        location /v2/ {{
{location.format(htpasswd=htpasswd)}
        }}
{extra_locations}
    }}
}}
""")
    return conf


def evidence(conf: Path, registry: dict[str, Any] | None = None) -> dict[str, ProbeRecord]:
    value = helpers.run_probe(config_nginx, Target(paths={"nginx_config": str(conf)}))
    config = registry or {"version": 0.1, "http": {"addr": "127.0.0.1:5000"}}
    return {"config.nginx": ProbeRecord("config.nginx", "ok", value),
            "config.registry": ProbeRecord("config.registry", "ok", {"path": "/etc/docker/registry/config.yml",
                                                                      "config": config})}


def one(check_id: str, ev: dict[str, ProbeRecord], profile: Any = None) -> tuple[Status, str]:
    results = judge(check_id, ev, profile)
    assert len(results) == 1, results
    return results[0].status, results[0].message


@pytest.mark.parametrize("check_id", EDGE)
def test_the_registry_recipe_passes(tmp_path, check_id):
    status, message = one(check_id, evidence(write_conf(tmp_path)))
    assert status is Status.PASS, message


def test_the_recipe_password_file_is_found_for_files_htpasswd(tmp_path):
    ev = evidence(write_conf(tmp_path))
    paths = htpasswd_paths({"config.nginx": ev["config.nginx"].value})
    assert paths == [(str(tmp_path / "nginx.htpasswd"), paths[0][1])]
    assert "nginx auth_basic_user_file" in paths[0][1]
    files = ev["config.nginx"].value["auth_user_files"]
    assert files[0]["path"] == str(tmp_path / "nginx.htpasswd") and files[0]["mode"] == "0640"


def test_a_relative_password_file_resolves_from_the_config_directory(tmp_path):
    location = RECIPE_LOCATION.replace("{htpasswd}", "nginx.htpasswd")
    ev = evidence(write_conf(tmp_path, location=location))
    server = ev["config.nginx"].value["registry_servers"][0]
    assert server["auth_basic_user_files"] == [str(tmp_path / "nginx.htpasswd")]
    assert one("proxy.nginx-auth", ev)[0] is Status.PASS


def test_unset_protocols_are_judged_on_nginx_default_for_its_version(tmp_path):
    server = RECIPE_SERVER.replace("ssl_protocols TLSv1.2 TLSv1.3;", "")
    status, message = one("proxy.nginx-tls", evidence(write_conf(tmp_path, server=server)))
    assert status is Status.FAIL
    assert "enables TLSv1, TLSv1.1" in message and "nginx's default" in message


def test_weak_protocols_and_ciphers_from_an_included_snippet_name_its_file_and_line(tmp_path):
    server = "\n".join(line for line in RECIPE_SERVER.splitlines() if "ssl_protocols" not in line
                       and "ssl_ciphers" not in line)
    snippet = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\nssl_ciphers HIGH:!aNULL:!MD5;\n"
    conf = write_conf(tmp_path, server=server, http="    include snippets/*.conf;")
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "ssl.conf").write_text(snippet)
    status, message = one("proxy.nginx-tls", evidence(conf))
    assert status is Status.FAIL
    assert f"(http, {tmp_path}/snippets/ssl.conf:1) enables TLSv1, TLSv1.1" in message
    assert f"ssl_ciphers 'HIGH:!aNULL:!MD5' (http, {tmp_path}/snippets/ssl.conf:2) enables" in message
    assert "CBC" in message


def test_a_server_level_value_overrides_the_weak_http_default(tmp_path):
    conf = write_conf(tmp_path, http="    ssl_protocols TLSv1 TLSv1.1;\n    ssl_ciphers ALL;")
    assert one("proxy.nginx-tls", evidence(conf))[0] is Status.PASS


def test_hsts_is_judged_only_when_the_profile_asks(tmp_path):
    profile_file = tmp_path / "hsts.yaml"
    profile_file.write_text("name: hsts\nextends: seed-hardened\nparams:\n"
                            "  proxy.nginx-tls: {require_hsts: true, hsts_min_max_age: 31536000}\n")
    strict = load_profile(str(profile_file))
    conf = write_conf(tmp_path)
    status, message = one("proxy.nginx-tls", evidence(conf), strict)
    assert status is Status.FAIL and "no Strict-Transport-Security header" in message
    # at the server level it is hidden by the location's own add_header (nginx inherits none then)
    server = RECIPE_SERVER + "        add_header Strict-Transport-Security \"max-age=63072000\" always;\n"
    status, message = one("proxy.nginx-tls", evidence(write_conf(tmp_path, server=server)), strict)
    assert status is Status.FAIL and "add_header at the location level" in message
    location = RECIPE_LOCATION + '            add_header Strict-Transport-Security "max-age=600" always;\n'
    status, message = one("proxy.nginx-tls", evidence(write_conf(tmp_path, location=location)), strict)
    assert status is Status.FAIL and "max-age below 31536000" in message
    location = RECIPE_LOCATION + '            add_header Strict-Transport-Security "max-age=63072000" always;\n'
    status, message = one("proxy.nginx-tls", evidence(write_conf(tmp_path, location=location)), strict)
    assert status is Status.PASS, message


def test_satisfy_any_with_allow_all_is_a_hole(tmp_path):
    location = RECIPE_LOCATION + "            satisfy any;\n            allow all;\n"
    status, message = one("proxy.nginx-auth", evidence(write_conf(tmp_path, location=location)))
    assert status is Status.FAIL
    assert "satisfy any" in message and "allow all" in message and "lets everyone in" in message
    assert f"{tmp_path}/nginx.conf:" in message


def test_a_catalog_location_without_auth_is_found_by_location_precedence(tmp_path):
    extra = """
        location = /v2/_catalog {
            auth_basic off;
            proxy_pass http://docker-registry;
        }"""
    status, message = one("proxy.nginx-auth", evidence(write_conf(tmp_path, extra_locations=extra)))
    assert status is Status.FAIL
    assert "for /v2/_catalog" in message and "location = /v2/_catalog" in message
    assert "/v2/library/app/manifests/latest" not in message


def test_a_regex_upload_location_wins_over_the_authenticated_prefix(tmp_path):
    extra = """
        location ~ ^/v2/.+/blobs/uploads/ {
            proxy_pass http://127.0.0.1:5000;
        }"""
    status, message = one("proxy.nginx-auth", evidence(write_conf(tmp_path, extra_locations=extra)))
    assert status is Status.FAIL
    assert "/v2/library/app/blobs/uploads/" in message and "for /v2/," not in message


def test_a_refusing_location_is_not_a_hole(tmp_path):
    extra = """
        location = /v2/_catalog {
            return 403;
        }"""
    assert one("proxy.nginx-auth", evidence(write_conf(tmp_path, extra_locations=extra)))[0] is Status.PASS


def test_auth_basic_without_a_user_file_authenticates_nobody(tmp_path):
    location = RECIPE_LOCATION.replace("auth_basic_user_file {htpasswd};", "")
    status, message = one("proxy.nginx-auth", evidence(write_conf(tmp_path, location=location)))
    assert status is Status.FAIL and "has no auth_basic_user_file" in message


def test_a_missing_user_file_fails(tmp_path):
    location = RECIPE_LOCATION.replace("{htpasswd}", str(tmp_path / "gone.htpasswd"))
    status, message = one("proxy.nginx-auth", evidence(write_conf(tmp_path, location=location)))
    assert status is Status.FAIL and "gone.htpasswd" in message and "does not exist" in message


def test_auth_request_to_a_token_service_counts(tmp_path):
    location = RECIPE_LOCATION.replace('auth_basic "Registry realm";', "auth_request /auth;").replace(
        "auth_basic_user_file {htpasswd};", "")
    assert one("proxy.nginx-auth", evidence(write_conf(tmp_path, location=location)))[0] is Status.PASS


def test_registry_token_auth_passes_without_proxy_auth(tmp_path):
    location = RECIPE_LOCATION.replace('auth_basic "Registry realm";', "").replace(
        "auth_basic_user_file {htpasswd};", "")
    registry = {"version": 0.1, "http": {"addr": "127.0.0.1:5000"},
                "auth": {"token": {"realm": "https://auth.example.com/token"}}}
    ev = evidence(write_conf(tmp_path, location=location), registry)
    status, message = one("proxy.nginx-auth", ev)
    assert status is Status.PASS and "tokens" in message
    ev = evidence(write_conf(tmp_path, location=location))
    status, message = one("proxy.nginx-auth", ev)
    assert status is Status.FAIL and "no authentication" in message


@pytest.mark.parametrize("check_id", EDGE)
def test_an_inner_nginx_on_loopback_is_skipped_with_the_reason(tmp_path, check_id):
    conf = write_conf(tmp_path, server="client_max_body_size 0;", listen="127.0.0.1:8080",
                      location=RECIPE_LOCATION.replace('auth_basic "Registry realm";', ""))
    status, message = one(check_id, evidence(conf))
    assert status is Status.SKIP
    assert "loopback in plaintext (127.0.0.1:8080)" in message


def test_recipe_header_without_always_and_chunked_off_fail_with_their_lines(tmp_path):
    location = RECIPE_LOCATION.replace(" always;", ";")
    server = RECIPE_SERVER.replace("chunked_transfer_encoding on;", "chunked_transfer_encoding off;")
    status, message = one("proxy.nginx-recipe", evidence(write_conf(tmp_path, server=server, location=location)))
    assert status is Status.FAIL
    assert "lacks `always`" in message
    assert f"chunked_transfer_encoding off (server, {tmp_path}/nginx.conf:" in message


def test_an_inner_add_header_hides_the_server_level_header(tmp_path):
    location = RECIPE_LOCATION.replace(
        "add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;",
        "add_header X-Frame-Options DENY;")
    server = RECIPE_SERVER + "        add_header 'Docker-Distribution-Api-Version' 'registry/2.0' always;\n"
    status, message = one("proxy.nginx-recipe", evidence(write_conf(tmp_path, server=server, location=location)))
    assert status is Status.FAIL and "location level" in message


@pytest.mark.parametrize("check_id", EDGE)
def test_a_plaintext_nginx_fronted_by_the_apache_vhost_is_skipped_even_on_all_addresses(tmp_path, check_id):
    conf = write_conf(tmp_path, server="client_max_body_size 0;", listen="8080",
                      location=RECIPE_LOCATION.replace('auth_basic "Registry realm";', ""))
    ev = evidence(conf)
    apache = {"path": "/etc/apache2/apache2.conf", "vhost": {"where": "/etc/apache2/sites-enabled/registry.conf:1",
                                                              "v2_proxy_pass": {"url": "http://127.0.0.1:8080/"}}}
    ev["config.apache"] = ProbeRecord("config.apache", "ok", apache)
    status, message = one(check_id, ev)
    assert status is Status.SKIP and "behind Apache's vhost at /etc/apache2/sites-enabled/registry.conf:1" in message
    del ev["config.apache"]
    status, message = one(check_id, ev)
    expected = {"proxy.nginx-tls": Status.SKIP, "proxy.nginx-auth": Status.FAIL, "proxy.nginx-recipe": Status.PASS}
    assert status is expected[check_id], message


def test_nginx_certificates_and_keys_are_found_for_files_checks(tmp_path):
    from auditor.probes.files import config_paths, key_paths

    location = RECIPE_LOCATION.replace("{htpasswd}", "nginx.htpasswd")
    conf = write_conf(tmp_path, location=location)
    text = conf.read_text().replace(f"{tmp_path}/cert.pem", "pki/cert.pem").replace(f"{tmp_path}/key.pem",
                                                                                  "pki/key.pem")
    conf.write_text(text)
    src = {"config.nginx": evidence(conf)["config.nginx"].value}
    assert [p for p, _ in key_paths(src)] == [str(tmp_path / "pki" / "key.pem")]
    certs = [(p, role) for p, role in config_paths(src) if "ssl_certificate" in role]
    assert [p for p, _ in certs] == [str(tmp_path / "pki" / "cert.pem")]
