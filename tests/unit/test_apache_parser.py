"""auditor.host.apache: lexing, includes, conditionals, variables, vhost and Location semantics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from auditor.checks.proxy.apache import protocols_enabled

from auditor.host import apache

from .helpers import FIXTURES

DEBIAN = FIXTURES / "apache" / "debian"
ENVVARS = {"APACHE_RUN_DIR": "/var/run/apache2", "APACHE_PID_FILE": "/var/run/apache2/apache2.pid",
           "APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data", "APACHE_LOG_DIR": "/var/log/apache2",
           "APACHE_LOCK_DIR": "/var/lock/apache2"}


def test_logical_lines_join_continuations_and_drop_comments() -> None:
    text = "# comment\nSSLProtocol -all \\\n    +TLSv1.2 \\\n  +TLSv1.3\n\n   # indented comment\nX y\n"
    assert list(apache.logical_lines(text)) == [(2, "SSLProtocol -all +TLSv1.2 +TLSv1.3"), (7, "X y")]


@pytest.mark.parametrize(("text", "args"), [
    ('AuthName "Registry Authentication"', ["AuthName", "Registry Authentication"]),
    ("Header set X 'a b'", ["Header", "set", "X", "a b"]),
    (r'LogFormat "%h \"%r\"" common', ["LogFormat", '%h "%r"', "common"]),
    ("ProxyPass / http://127.0.0.1:5000/ nocanon", ["ProxyPass", "/", "http://127.0.0.1:5000/", "nocanon"]),
])
def test_split_args_handles_quotes_and_escapes(text: str, args: list[str]) -> None:
    assert apache.split_args(text) == args


def test_unterminated_quote_and_unbalanced_sections_are_errors() -> None:
    with pytest.raises(apache.ParseError, match="unterminated"):
        apache.parse_text('AuthName "oops\n', "f")
    with pytest.raises(apache.ParseError, match="never closed"):
        apache.parse_text("<VirtualHost *:443>\nServerName a\n", "f")
    with pytest.raises(apache.ParseError, match="closes VirtualHost"):
        apache.parse_text("<VirtualHost *:443>\n</Location>\n", "f")


def test_debian_layout_reads_every_enabled_file_in_apache_order() -> None:
    config = apache.load(str(DEBIAN / "apache2.conf"), str(DEBIAN), env=ENVVARS)
    names = [Path(f).relative_to(DEBIAN).as_posix() for f in config.files]
    assert names[0] == "apache2.conf"
    assert names[1:13] == sorted(n for n in names[1:13])  # mods-enabled/*.load, sorted
    assert "mods-enabled/status.load" not in names and "mods-available/status.conf" not in names
    assert names[13:] == ["mods-enabled/ssl.conf", "ports.conf", "conf-enabled/security.conf",
                          "sites-enabled/000-default.conf", "sites-enabled/001-intranet-ssl.conf",
                          "sites-enabled/registry.conf"]
    assert config.errors == []
    listens = [n.args for n in config.nodes if n.key == "listen"]
    assert listens == [["80"], ["443"]]  # ssl_module loaded: <IfModule ssl_module> true; mod_gnutls.c false
    assert any("mod_gnutls.c> is false" in s for s in config.skipped)


def test_env_variables_expand_and_unknown_ones_are_reported() -> None:
    config = apache.load(str(DEBIAN / "apache2.conf"), str(DEBIAN), env=ENVVARS)
    error_log = next(n for n in config.nodes if n.key == "errorlog")
    assert error_log.args == ["/var/log/apache2/error.log"]
    bare = apache.load(str(DEBIAN / "apache2.conf"), str(DEBIAN))
    assert "variable ${APACHE_LOG_DIR} is not defined" in bare.errors


def test_ifdefine_define_and_variables(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("Define HOST registry.example.com\n")
    conf = tmp_path / "a.conf"
    conf.write_text("<IfDefine !NOSSL>\nListen 443\n</IfDefine>\n<IfDefine DEBUG>\nLogLevel debug\n</IfDefine>\n"
                    "Include extra.conf\n<VirtualHost *:443>\nServerName ${HOST}\n</VirtualHost>\n"
                    "<IfDefine HOST>\nKeepAlive On\n</IfDefine>\n")
    config = apache.load(str(conf), str(tmp_path))
    assert [n.key for n in config.nodes] == ["listen", "define", "virtualhost", "keepalive"]
    assert config.nodes[2].block and config.nodes[2].block[0].args == ["registry.example.com"]
    debug = apache.load(str(conf), str(tmp_path), defines=["DEBUG", "NOSSL"])
    assert [n.key for n in debug.nodes] == ["loglevel", "define", "virtualhost", "keepalive"]


def test_include_directory_glob_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "b.conf").write_text("B 1\n")
    (tmp_path / "conf" / "a.conf").write_text("A 1\n")
    conf = tmp_path / "main.conf"
    conf.write_text("Include conf\nIncludeOptional nowhere/*.conf\nIncludeOptional missing.conf\n"
                    "Include absent.conf\n")
    config = apache.load(str(conf), str(tmp_path))
    assert [n.name for n in config.nodes] == ["A", "B"]
    assert len(config.errors) == 1 and "absent.conf: no such file" in config.errors[0]


def test_ifmodule_sees_only_modules_loaded_before_it(tmp_path: Path) -> None:
    conf = tmp_path / "m.conf"
    conf.write_text("<IfModule headers_module>\nEarly on\n</IfModule>\n"
                    "LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so\n"
                    "<IfModule mod_headers.c>\nLate on\n</IfModule>\n<IfModule !mod_headers.c>\nNever on\n"
                    "</IfModule>\n<IfModule log_config_module>\nStatic on\n</IfModule>\n")
    config = apache.load(str(conf), str(tmp_path))
    assert [n.name for n in config.nodes if n.key != "loadmodule"] == ["Late", "Static"]


@pytest.mark.parametrize(("pattern", "uri", "matches"), [
    ("/v2/", "/v2/", True), ("/v2/", "/v2/_catalog", True), ("/v2/", "/v2", False),
    ("/v2", "/v2/x", True), ("/v2", "/v2other", False), ("/", "/v2/", True),
    ("/v2/*/blobs", "/v2/app/blobs/x", True),
])
def test_location_matching(pattern: str, uri: str, matches: bool) -> None:
    node = apache.Node("Location", [pattern], "f", 1, [])
    assert apache.location_matches(node, uri) is matches


def test_locationmatch_and_tilde_are_regexes() -> None:
    assert apache.location_matches(apache.Node("LocationMatch", ["^/v2/.*/manifests/"], "f", 1, []),
                                   "/v2/a/manifests/latest")
    assert apache.location_matches(apache.Node("Location", ["~", "^/v2/_catalog$"], "f", 1, []), "/v2/_catalog")
    assert not apache.location_matches(apache.Node("Location", ["~", "^/v2/_catalog$"], "f", 1, []), "/v2/")


def test_location_proxypass_takes_the_location_path() -> None:
    config = apache.load_text("<VirtualHost *:443>\nServerName r\nProxyPass / http://127.0.0.1:9/\n"
                              "<Location /v2/>\nProxyPass http://127.0.0.1:5000/v2/ nocanon\n</Location>\n"
                              "</VirtualHost>\n", "f", "/")
    facts = apache.registry_facts(config, "r", 443)
    chosen = facts["vhost"]["v2_proxy_pass"]
    assert (chosen["path"], chosen["url"], chosen["flags"]) == ("/v2/", "http://127.0.0.1:5000/v2/", ["nocanon"])


def test_proxypass_exclusion_means_not_proxied() -> None:
    config = apache.load_text("<VirtualHost *:443>\nProxyPass /v2/ !\nProxyPass / http://127.0.0.1:5000/\n"
                              "</VirtualHost>\n", "f", "/")
    assert apache.registry_facts(config, None, 443)["vhost"]["v2_proxy_pass"]["url"] == "!"


def test_requireall_with_all_granted_is_not_open() -> None:
    config = apache.load_text("<VirtualHost *:443>\n<Location /v2/>\nAuthType Basic\n<RequireAll>\n"
                              "Require all granted\nRequire valid-user\n</RequireAll>\n</Location>\n"
                              "</VirtualHost>\n", "f", "/")
    rules = apache.registry_facts(config, None, 443)["v2_access"]["require"]["rules"]
    assert [(r["args"], r["container"]) for r in rules] == [(["all", "granted"], "RequireAll"),
                                                            (["valid-user"], "RequireAll")]


def test_secret_request_header_values_are_redacted() -> None:
    config = apache.load_text('<VirtualHost *:443>\nRequestHeader set Authorization "Basic c2VjcmV0"\n'
                              "</VirtualHost>\n", "f", "/")
    headers = apache.registry_facts(config, None, 443)["vhost"]["request_headers"]
    assert headers[0]["args"] == ["set", "Authorization", "<redacted>"]


@pytest.mark.parametrize(("args", "enabled"), [
    (["-all", "+TLSv1.2", "+TLSv1.3"], ["TLSv1.2", "TLSv1.3"]),
    (["all", "-SSLv3"], ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]),
    (["all", "-TLSv1", "-TLSv1.1"], ["TLSv1.2", "TLSv1.3"]),
    (["TLSv1.2"], ["TLSv1.2"]),
    (["+TLSv1.3"], ["TLSv1.3"]),
])
def test_sslprotocol_as_mod_ssl_parses_it(args: list[str], enabled: list[str]) -> None:
    assert protocols_enabled(args) == (enabled, [])


@pytest.mark.skipif(shutil.which("apache2") is None, reason="apache2 is not installed")
def test_real_apache_agrees_on_the_included_files(tmp_path: Path) -> None:
    """`apache2 -t -D DUMP_INCLUDES` on a copy of the Debian layout lists the files our loader read."""
    root = tmp_path / "apache"
    shutil.copytree(DEBIAN, root, symlinks=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", **ENVVARS,
           "APACHE_RUN_DIR": str(tmp_path), "APACHE_LOG_DIR": str(tmp_path), "APACHE_LOCK_DIR": str(tmp_path),
           "APACHE_PID_FILE": str(tmp_path / "pid")}
    out = subprocess.run(["apache2", "-d", str(root), "-f", str(root / "apache2.conf"), "-t", "-D", "DUMP_INCLUDES"],
                         capture_output=True, text=True, env=env, timeout=30)
    listed = [line.split(")", 1)[1].strip() for line in out.stdout.splitlines() if line.strip().startswith("(")]
    if out.returncode != 0 and not listed:
        pytest.skip(f"apache2 -t refused the copy: {out.stderr.strip()[-300:]}")
    config = apache.load(str(root / "apache2.conf"), str(root), env=env)
    assert [str(Path(p).resolve()) for p in listed] == [str(Path(p).resolve()) for p in config.files]
    assert apache.cross_check(config, None, out.stdout, None)["files_agree"] is True


RECORDED_S = """VirtualHost configuration:
*:443                  is a NameVirtualHost
         default server intranet.example.com (/etc/apache2/sites-enabled/001-intranet-ssl.conf:3)
         port 443 namevhost intranet.example.com (/etc/apache2/sites-enabled/001-intranet-ssl.conf:3)
         port 443 namevhost registry.example.com (/etc/apache2/sites-enabled/registry.conf:4)
                 alias registry
*:80                   localhost (/etc/apache2/sites-enabled/000-default.conf:1)
ServerRoot: "/etc/apache2"
"""
RECORDED_INCLUDES = """Included configuration files:
  (*) /etc/apache2/apache2.conf
    (28) /etc/apache2/mods-enabled/ssl.load
    (31) /etc/apache2/ports.conf
"""


def test_apache2ctl_outputs_are_parsed_for_cross_checks() -> None:
    assert apache.vhosts_from_s(RECORDED_S) == [
        "/etc/apache2/sites-enabled/000-default.conf:1", "/etc/apache2/sites-enabled/001-intranet-ssl.conf:3",
        "/etc/apache2/sites-enabled/registry.conf:4"]
    assert apache.dump_includes_files(RECORDED_INCLUDES) == [
        "/etc/apache2/apache2.conf", "/etc/apache2/mods-enabled/ssl.load", "/etc/apache2/ports.conf"]
    config = apache.Config([], files=["/etc/apache2/apache2.conf", "/etc/apache2/ports.conf"])
    agrees = apache.cross_check(config, "/etc/apache2/sites-enabled/registry.conf:4", RECORDED_INCLUDES, RECORDED_S)
    assert agrees["files_agree"] is False
    assert agrees["files_only_apache_read"] == ["/etc/apache2/mods-enabled/ssl.load"]
    assert agrees["vhost_known_to_apache"] is True


def test_auth_in_a_proxy_section_protects_the_proxied_registry() -> None:
    text = ("<VirtualHost *:443>\nProxyPass / http://127.0.0.1:5000/ nocanon\n"
            "<Proxy \"http://127.0.0.1:5000/*\">\nAuthType Basic\nAuthUserFile /x\nRequire valid-user\n</Proxy>\n"
            "<Proxy http://10.9.9.9/>\nRequire all granted\n</Proxy>\n</VirtualHost>\n")
    facts = apache.registry_facts(apache.load_text(text, "f", "/"), None, 443)
    access = facts["v2_access"]
    assert access["sections"] == ['<Proxy http://127.0.0.1:5000/*> at f:3']
    assert access["auth_type"]["value"] == "Basic"
    assert [r["args"] for r in access["require"]["rules"]] == [["valid-user"]]


def test_proxied_url_maps_the_request_path() -> None:
    rule = {"path": "/", "url": "http://127.0.0.1:5000/"}
    assert apache.proxied_url(rule, "/v2/_catalog") == "http://127.0.0.1:5000/v2/_catalog"
    assert apache.proxied_url({"path": "/v2/", "url": "http://127.0.0.1:8080/v2"}, "/v2/x") == (
        "http://127.0.0.1:8080/v2/x")
    assert apache.proxied_url({"path": "/v2/", "url": "!"}, "/v2/x") is None


def test_main_server_without_vhosts_serves_its_listen_port() -> None:
    text = ("Listen 443\nSSLEngine on\nSSLProtocol -all +TLSv1.3\nProxyPass / http://127.0.0.1:5000/ nocanon\n"
            "<Location /v2/>\nAuthType Basic\nRequire valid-user\n</Location>\n")
    facts = apache.registry_facts(apache.load_text(text, "f", "/"), "r", 443)
    assert facts["selection"] == "no <VirtualHost> in the config: the main server listens on port 443"
    assert facts["vhost"]["ssl_engine"]["level"] == "global"
    assert facts["vhost"]["v2_proxy_pass"]["url"] == "http://127.0.0.1:5000/"
    assert facts["v2_access"]["auth_type"]["value"] == "Basic"
    assert apache.registry_facts(apache.load_text("Listen 80\n", "f", "/"), "r", 443)["vhost"] is None


DEBIAN_ENV = {"APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data",
              "APACHE_PID_FILE": "/var/run/apache2/apache2.pid", "APACHE_RUN_DIR": "/var/run/apache2",
              "APACHE_LOCK_DIR": "/var/lock/apache2", "APACHE_LOG_DIR": "/var/log/apache2"}


@pytest.mark.skipif(not Path("/etc/apache2/apache2.conf").is_file() or shutil.which("apache2") is None,
                    reason="Debian's apache2 package is not installed")
def test_this_machines_stock_debian_apache_config_reads_as_apache_reads_it() -> None:
    config = apache.load("/etc/apache2/apache2.conf", "/etc/apache2", env=DEBIAN_ENV)
    assert config.errors == []
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", **DEBIAN_ENV}
    out = subprocess.run(["apache2", "-d", "/etc/apache2", "-f", "/etc/apache2/apache2.conf", "-t", "-D",
                          "DUMP_INCLUDES"], capture_output=True, text=True, env=env, timeout=30)
    if not apache.dump_includes_files(out.stdout):
        pytest.skip(f"apache2 -t refused the stock config: {out.stderr.strip()[-300:]}")
    assert apache.cross_check(config, None, out.stdout, None)["files_agree"] is True
