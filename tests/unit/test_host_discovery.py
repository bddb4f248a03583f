"""host.discovery on /proc trees built in tmp dirs (command lines, cwd, environment, namespaces),
and on this very process."""

from __future__ import annotations

import os
from pathlib import Path

from auditor.host import discovery, procfs
from auditor.probes.host import merge

from .helpers import FIXTURES

OWN_NS = "net:[4026531840]"
OTHER_NS = "net:[4026532999]"


def fake_process(proc: Path, pid: int, argv: list[str], *, ppid: int = 1, netns: str = OWN_NS,
                 exe: str | None = None, cwd: str = "/", env: dict[str, str] | None = None,
                 comm: str | None = None) -> None:
    d = proc / str(pid)
    (d / "ns").mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    name = comm or os.path.basename(argv[0].split()[0])[:15]
    (d / "stat").write_text(f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194560 0 0\n")
    os.symlink(netns, d / "ns" / "net")
    os.symlink("mnt:[4026531841]", d / "ns" / "mnt")
    os.symlink(exe or "/usr/bin/" + os.path.basename(argv[0]), d / "exe")
    os.symlink(cwd, d / "cwd")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in (env or {}).items()))


def make_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    os.symlink(OWN_NS, proc / "self" / "ns" / "net")
    return proc


def test_finds_the_deployment_in_its_own_namespace_only(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 100, ["docker-registry", "serve", "/etc/docker/registry/config.yml"])
    fake_process(proc, 200, ["registry", "serve", "/other/config.yml"], netns=OTHER_NS)
    fake_process(proc, 300, ["nginx: master process /usr/sbin/nginx -c /srv/nginx/nginx.conf -g daemon on;"],
                 exe="/usr/sbin/nginx", comm="nginx")
    fake_process(proc, 301, ["nginx: worker process"], ppid=300, exe="/usr/sbin/nginx", comm="nginx")
    fake_process(proc, 400, ["/usr/sbin/apache2", "-k", "start"], exe="/usr/sbin/apache2",
                 env={"APACHE_RUN_DIR": "/var/run/apache2", "APACHE_LOG_DIR": "/var/log/apache2"})
    fake_process(proc, 401, ["/usr/sbin/apache2", "-k", "start"], ppid=400, exe="/usr/sbin/apache2")
    found = discovery.discover_processes(str(proc))
    assert found["netns"] == OWN_NS
    (registry,) = found["registries"]
    assert registry["pid"] == 100 and registry["config"] == "/etc/docker/registry/config.yml"
    assert "docker-registry serve <config>" in registry["config_source"]
    (nginx,) = found["nginx"]
    assert nginx["pid"] == 300 and nginx["config"] == "/srv/nginx/nginx.conf"
    assert nginx["global_directives"] == "daemon on;"
    (apache,) = found["apache"]
    assert apache["pid"] == 400 and apache["config"] == "/etc/apache2/apache2.conf"
    assert apache["env"] == {"APACHE_RUN_DIR": "/var/run/apache2", "APACHE_LOG_DIR": "/var/log/apache2"}
    assert apache["env_source"] == "process environment"


def test_relative_config_resolves_against_the_process_cwd(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 10, ["/usr/bin/registry", "serve", "conf/config.yml"], cwd="/srv/registry")
    (registry,) = discovery.discover_processes(str(proc))["registries"]
    assert registry["config"] == "/srv/registry/conf/config.yml"


def test_config_from_environment_and_secrets_masked(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 10, ["registry", "serve"], env={
        "REGISTRY_CONFIGURATION_PATH": "/etc/registry.yml", "REGISTRY_HTTP_ADDR": "0.0.0.0:5000",
        "REGISTRY_HTTP_SECRET": "hunter2-very-secret", "HOME": "/root"})
    (registry,) = discovery.discover_processes(str(proc))["registries"]
    assert registry["config"] == "/etc/registry.yml"
    assert "REGISTRY_CONFIGURATION_PATH" in registry["config_source"]
    assert registry["env_overrides"]["REGISTRY_HTTP_ADDR"] == "0.0.0.0:5000"
    assert registry["env_overrides"]["REGISTRY_HTTP_SECRET"] == procfs.MASK
    assert "HOME" not in registry["env_overrides"]


def test_apache_with_d_and_f_and_debian_envvars(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 50, ["apache2", "-d", "/srv/apache", "-f", "conf/main.conf", "-D", "SSL"],
                 exe="/usr/sbin/apache2")
    root = proc / "50" / "root"
    os.symlink(tmp_path / "rootfs", root)
    envvars = tmp_path / "rootfs" / "srv" / "apache" / "envvars"
    envvars.parent.mkdir(parents=True)
    envvars.write_text("unset HOME\nexport APACHE_RUN_USER=www-data\nexport APACHE_PID_FILE=/var/run/apache2$SUFFIX/"
                       "apache2.pid\nexport APACHE_LOG_DIR=/var/log/apache2$SUFFIX\n")
    (apache,) = discovery.discover_processes(str(proc))["apache"]
    assert apache["server_root"] == "/srv/apache"
    assert apache["config"] == "/srv/apache/conf/main.conf"
    assert apache["defines"] == ["SSL"]
    assert apache["env_source"] == "envvars file"
    assert apache["env"]["APACHE_PID_FILE"] == "/var/run/apache2/apache2.pid"


def test_httpd_defaults() -> None:
    process = procfs.Process(7, 1, "httpd", ("/usr/sbin/httpd", "-DFOREGROUND"), "/usr/sbin/httpd", OWN_NS, None)
    facts = discovery.parse_apache(process, {}, None)
    assert facts["config"] == "/etc/httpd/conf/httpd.conf" and facts["defines"] == ["FOREGROUND"]


def test_nginx_default_config_and_prefix() -> None:
    process = procfs.Process(8, 1, "nginx", ("nginx: master process /usr/sbin/nginx",), "/usr/sbin/nginx",
                             OWN_NS, None)
    args = discovery.nginx_argv(process)
    assert args == ["/usr/sbin/nginx"]
    facts = discovery.parse_nginx(process, args, "/")
    assert facts["config"] == "/etc/nginx/nginx.conf" and "default" in facts["config_source"]
    with_prefix = discovery.parse_nginx(process, ["nginx", "-p", "/opt/ngx", "-c", "conf/n.conf"], "/")
    assert with_prefix["config"] == "/opt/ngx/conf/n.conf"


def test_not_registries() -> None:
    for argv in (("registry",), ("python3", "serve", "registry"), ("/usr/bin/registry-tool", "serve", "x")):
        assert not discovery.is_registry(procfs.Process(1, 0, "x", argv, None, None, None))


def test_this_process_is_read_from_the_real_proc() -> None:
    me = procfs.read_process(os.getpid())
    assert me is not None and me.netns == procfs.own_netns()
    assert me.ppid == os.getppid() and me.exe and os.path.samefile(me.exe, "/proc/self/exe")


def test_explicit_paths_override_discovery() -> None:
    procs = {"netns": OWN_NS, "registries": [{"pid": 5, "config": "/found.yml", "config_source": "cmdline"}],
             "nginx": [], "apache": []}
    engine = {"socket": "/var/run/docker.sock", "state": "absent", "registries": []}
    out = merge(procs, engine, {"registry_config": "/given.yml", "apache_config": "/a.conf"})
    assert out["registry"]["config"] == "/given.yml" and out["registry"]["discovered_config"] == "/found.yml"
    assert out["registry"]["config_source"] == "--registry-config" and out["registry"]["pid"] == 5
    assert out["apache"] == {"pid": None, "config": "/a.conf", "config_source": "--apache-config"}
    assert out["nginx"] is None


def test_secret_options_are_masked_in_command_lines() -> None:
    argv = ("tool", "--password=hunter2", "--token", "abc123", "-c", "/etc/x.conf", "--api-key=k")
    shown = procfs.Process(1, 0, "tool", argv, None, None, None).cmdline
    assert "hunter2" not in shown and "abc123" not in shown and "=k" not in shown
    assert "-c /etc/x.conf" in shown and "--token <redacted>" in shown


def test_debian_envvars_default_and_multi_instance() -> None:
    text = (FIXTURES / "host" / "debian-apache2-envvars").read_text()  # Debian bookworm's file
    default = discovery.parse_envvars(text)
    assert default["APACHE_PID_FILE"] == "/var/run/apache2/apache2.pid"
    assert default["APACHE_LOG_DIR"] == "/var/log/apache2" and default["APACHE_RUN_USER"] == "www-data"
    second = discovery.parse_envvars(text, "/etc/apache2-registry")
    assert second["APACHE_RUN_DIR"] == "/var/run/apache2-registry"
    assert second["APACHE_CONFDIR"] == "/etc/apache2-registry"
