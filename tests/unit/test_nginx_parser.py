"""auditor.host.nginx: includes, `nginx -T` dumps, location selection, inheritance, value syntax."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.host import nginx
from auditor.judge import units

from .helpers import FIXTURES

DEBIAN = FIXTURES / "nginx" / "debian"
REGISTRY = {"host": "127.0.0.1", "port": 5000}


def dump_of(tree_files: list[str]) -> str:
    """Text in `nginx -T`'s format for the given files."""
    return "".join(f"# configuration file {path}:\n{Path(path).read_text()}\n" for path in tree_files)


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("32k", 32768), ("4096m", 4096 * 1024**2), ("1G", 1024**3),
                                                ("10M", 10 * 1024**2), ("12x", None), ("", None)])
def test_size_bytes(text: str, expected: int | None) -> None:
    assert units.size_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("900s", 900), ("900", 900), ("15m", 900), ("1h 30m", 5400),
                                                ("500ms", 0.5), ("1d", 86400), ("soon", None)])
def test_time_seconds(text: str, expected: float | None) -> None:
    assert units.time_seconds(text) == expected


def test_includes_follow_relative_globs_in_sorted_order() -> None:
    tree = nginx.load_from_disk(str(DEBIAN / "nginx.conf"))
    names = [Path(f).relative_to(DEBIAN).as_posix() for f in tree.files]
    assert names == ["nginx.conf", "modules-enabled/README.conf", "mime.types", "conf.d/registry-tuning.conf",
                     "sites-enabled/default", "sites-enabled/registry"]
    assert tree.errors == []


def test_missing_plain_include_is_reported(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { include missing.conf; include none/*.conf; }\n")
    tree = nginx.load_from_disk(str(conf))
    assert len(tree.errors) == 1 and "missing.conf: no such file" in tree.errors[0]


def test_split_dump_keeps_files_in_order() -> None:
    text = "# configuration file /etc/nginx/nginx.conf:\nevents {}\n\n# configuration file /etc/nginx/b.conf:\nx;\n"
    assert list(nginx.split_dump(text)) == ["/etc/nginx/nginx.conf", "/etc/nginx/b.conf"]
    assert nginx.split_dump(text)["/etc/nginx/b.conf"] == "x;\n"


def test_dump_and_disk_give_the_same_facts() -> None:
    disk = nginx.load_from_disk(str(DEBIAN / "nginx.conf"))
    dumped = nginx.load_from_dump(dump_of(disk.files), str(DEBIAN / "nginx.conf"))
    assert dumped.files == disk.files
    build = nginx.Build()
    assert nginx.registry_facts(dumped, REGISTRY, build) == nginx.registry_facts(disk, REGISTRY, build)


def test_dump_glob_does_not_cross_directories() -> None:
    names = ["/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/sub/b.conf", "/etc/nginx/conf.d/c.txt"]
    assert nginx._component_glob("/etc/nginx/conf.d/*.conf", names) == ["/etc/nginx/conf.d/a.conf"]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_real_nginx_dump_parses_back_to_the_effective_config(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "timeouts.conf").write_text("proxy_read_timeout 900s;\nproxy_send_timeout 900s;\n")
    (tmp_path / "conf.d" / "site.conf").write_text(
        "upstream reg { server 127.0.0.1:5000; }\n"
        "server { listen 127.0.0.1:18080; client_max_body_size 0;\n"
        "  location /v2/ { proxy_pass http://reg; proxy_set_header Host $host; } }\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"  fastcgi_temp_path {tmp_path}/f; uwsgi_temp_path {tmp_path}/u; scgi_temp_path {tmp_path}/s;\n"
        "  include conf.d/*.conf; }\n")
    out = subprocess.run(["nginx", "-T", "-q", "-e", str(tmp_path / "startup.log"), "-p", str(tmp_path), "-c",
                          str(conf)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    tree = nginx.load_from_dump(out.stdout, str(conf))
    assert sorted(tree.files) == sorted([str(conf), str(tmp_path / "conf.d" / "site.conf"),
                                         str(tmp_path / "conf.d" / "timeouts.conf")])
    facts = nginx.registry_facts(tree, REGISTRY, nginx.Build())
    server = facts["registry_servers"][0]
    assert server["directives"]["proxy_read_timeout"] == {
        "args": ["900s"], "level": "http", "where": f"{tmp_path}/conf.d/timeouts.conf:1"}
    assert facts["proxy_temp_path"] == f"{tmp_path}/proxy"


def _locations(tmp_path: Path, body: str) -> list[nginx.Node]:
    conf = tmp_path / "n.conf"
    conf.write_text(f"events {{}}\nhttp {{ server {{ {body} }} }}\n")
    tree = nginx.load_from_disk(str(conf))
    http = tree.nodes[1]
    return http.children("server")[0].block or []


@pytest.mark.parametrize(("body", "uri", "chosen"), [
    ("location / {} location /v2/ {}", "/v2/x", "/v2/"),
    ("location /v2/ {} location ~ ^/v2/.+/uploads/ {}", "/v2/a/uploads/", "~ ^/v2/.+/uploads/"),
    ("location ^~ /v2/ {} location ~ ^/v2/ {}", "/v2/a", "^~ /v2/"),
    ("location = /v2/ {} location /v2/ {}", "/v2/", "= /v2/"),
    ("location ~* ^/V2/ {} location / {}", "/v2/a", "~* ^/V2/"),
    ("location /other/ {}", "/v2/a", None),
])
def test_location_selection_follows_nginx(tmp_path: Path, body: str, uri: str, chosen: str | None) -> None:
    chain = nginx.select_location(_locations(tmp_path, body), uri)
    assert (" ".join(chain[-1].args) if chain else None) == chosen


def test_nested_location_chain(tmp_path: Path) -> None:
    chain = nginx.select_location(_locations(tmp_path, "location /v2/ { location ~ blobs { } }"), "/v2/a/blobs/x")
    assert [" ".join(n.args) for n in chain] == ["/v2/", "~ blobs"]


@pytest.mark.parametrize(("args", "address", "port", "ssl", "loopback"), [
    (["80"], "*", 80, False, False),
    (["127.0.0.1:8080"], "127.0.0.1", 8080, False, True),
    (["[::]:443", "ssl", "http2"], "::", 443, True, False),
    (["[::1]:80"], "::1", 80, False, True),
    (["localhost"], "localhost", 80, False, True),
    (["10.0.0.1:80"], "10.0.0.1", 80, False, False),
])
def test_listen_parsing(args: list[str], address: str, port: int, ssl: bool, loopback: bool) -> None:
    parsed = nginx.parse_listen_directive(args, False)
    assert (parsed["address"], parsed["port"], parsed["ssl"], parsed["loopback"]) == (address, port, ssl, loopback)


@pytest.mark.parametrize(("target", "registry", "expected"), [
    ("127.0.0.1:5000", {"host": "127.0.0.1", "port": 5000}, True),
    ("localhost:5000", {"host": "127.0.0.1", "port": 5000}, True),
    ("[::1]:5000", {"host": "127.0.0.1", "port": 5000}, True),
    ("10.0.0.10:5000", {"host": "", "port": 5000}, True),
    ("127.0.0.1:5001", {"host": "127.0.0.1", "port": 5000}, False),
    ("10.0.0.9:5000", {"host": "10.0.0.10", "port": 5000}, False),
    ("unix:/run/registry.sock", {"host": "127.0.0.1", "port": 5000}, False),
])
def test_upstream_address_matches_registry(target: str, registry: dict, expected: bool) -> None:
    assert nginx.address_is_registry(target, registry) is expected


def test_proxy_targets_resolve_upstreams_and_refuse_variables() -> None:
    named = {"docker-registry": ["127.0.0.1:5000", "127.0.0.1:5001"]}
    assert nginx.proxy_targets("http://docker-registry", named)[0] == ["127.0.0.1:5000", "127.0.0.1:5001"]
    assert nginx.proxy_targets("http://127.0.0.1:5000/v2/", named)[0] == ["127.0.0.1:5000"]
    assert nginx.proxy_targets("https://registry", {})[0] == ["registry:443"]
    assert nginx.proxy_targets("http://$backend", named) == ([], "contains variables (resolved at request time)")


def test_build_from_nginx_v_output() -> None:
    text = ("nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx "
            "--http-client-body-temp-path=/var/lib/nginx/body --http-proxy-temp-path=/var/lib/nginx/proxy")
    build = nginx.Build.from_version_output(text)
    assert (build.prefix, build.proxy_temp_path, build.client_body_temp_path) == (
        "/usr/share/nginx", "/var/lib/nginx/proxy", "/var/lib/nginx/body")
    upstream = nginx.Build.from_version_output("configure arguments: --prefix=/opt/nginx")
    assert upstream.proxy_temp_path == "/opt/nginx/proxy_temp"


def test_default_temp_paths_come_from_the_build(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("events {}\nhttp { upstream r { server 127.0.0.1:5000; }\n"
                    "server { location /v2/ { proxy_pass http://r; proxy_temp_path relative/tmp; } } }\n")
    facts = nginx.registry_facts(nginx.load_from_disk(str(conf)), REGISTRY, nginx.Build(), prefix="/srv/nginx")
    server = facts["registry_servers"][0]
    assert server["directives"]["client_body_temp_path"]["path"] == "/var/lib/nginx/body"
    assert server["directives"]["client_body_temp_path"]["level"] == "default (Debian defaults)"
    assert facts["proxy_temp_path"] == "/srv/nginx/relative/tmp"
    assert server["listen"][0]["raw"] == "80"


def test_authorization_header_values_are_redacted(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("events {}\nhttp { server { location /v2/ { proxy_pass http://127.0.0.1:5000;\n"
                    "proxy_set_header Authorization \"Basic c2VjcmV0OnNlY3JldA==\"; } } }\n")
    facts = nginx.registry_facts(nginx.load_from_disk(str(conf)), REGISTRY, nginx.Build())
    headers = facts["registry_servers"][0]["proxy_set_header"]["headers"]
    assert headers[0]["value"] == "<redacted>"
    assert "c2VjcmV0" not in repr(facts)


def test_upstream_may_reach_another_registry_on_the_host() -> None:
    registry = {"host": "", "port": 5443, "also": [{"host": "127.0.0.1", "port": 5000, "config": "/etc/r.yml"}]}
    assert nginx.address_is_registry("127.0.0.1:5000", registry)
    assert nginx.address_is_registry("10.0.0.1:5443", registry)
    assert not nginx.address_is_registry("127.0.0.1:5001", registry)


@pytest.mark.skipif(not Path("/etc/nginx/nginx.conf").is_file(), reason="Debian's nginx package is not installed")
def test_this_machines_stock_debian_nginx_config_parses_with_absolute_includes() -> None:
    tree = nginx.load_from_disk("/etc/nginx/nginx.conf")
    assert tree.errors == []
    assert "/etc/nginx/mime.types" in tree.files
    facts = nginx.registry_facts(tree, REGISTRY, nginx.Build())
    assert facts["registry_servers"] == []  # the stock site serves files, it proxies nothing
