"""Command lines keep their argument boundaries (/proc/PID/cmdline is NUL-separated) wherever they
are reused: discovery facts carry `argv` lists, and `nginx -t` gets `-g 'daemon off;'` as one argument."""

from __future__ import annotations

import shlex
from pathlib import Path

from auditor.host import discovery
from auditor.remediation import validate
from auditor.remediation.model import FileChange

from .test_host_discovery import fake_process, make_proc


def test_nginx_master_started_like_the_official_image_keeps_its_g_argument(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    # nginx rewrites its title to "nginx: master process <argv joined by spaces>"
    fake_process(proc, 300, ["nginx: master process nginx -c /srv/n.conf -g daemon off; -p /srv/"],
                 exe="/usr/sbin/nginx", comm="nginx")
    (nginx,) = discovery.discover_processes(str(proc))["nginx"]
    assert nginx["argv"] == ["nginx", "-c", "/srv/n.conf", "-g", "daemon off;", "-p", "/srv/"]
    assert nginx["global_directives"] == "daemon off;"
    argv = validate._nginx_argv(nginx, "/srv/n.conf")
    assert argv[argv.index("-g") + 1] == "daemon off;"
    assert argv[argv.index("-p") + 1] == "/srv/"
    assert "-g 'daemon off;'" in shlex.join(argv)


def test_plain_argv_process_keeps_spaces_inside_one_argument(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 100, ["docker-registry", "serve", "/srv/my configs/config.yml"])
    (registry,) = discovery.discover_processes(str(proc))["registries"]
    assert registry["argv"] == ["docker-registry", "serve", "/srv/my configs/config.yml"]
    assert registry["config"] == "/srv/my configs/config.yml"
    assert shlex.split(str(registry["cmdline"])) == registry["argv"]


def test_apache_defines_reach_validation(tmp_path: Path) -> None:
    proc = make_proc(tmp_path)
    fake_process(proc, 400, ["/usr/sbin/apache2", "-d", "/srv/a", "-f", "/srv/a/a.conf", "-D", "LAB", "-DTWO"],
                 exe="/usr/sbin/apache2")
    (apache,) = discovery.discover_processes(str(proc))["apache"]
    assert apache["defines"] == ["LAB", "TWO"]
    change = FileChange(path="/srv/a/a.conf", generator="apache-vhost", checks=("x",), validate="apache")
    command = validate.validation_command(change, {"apache": apache})
    assert "-D LAB -D TWO" in command and "-f /srv/a/a.conf" in command


def test_nginx_validation_without_argv_passes_no_g() -> None:
    argv = validate._nginx_argv({"exe": "/usr/sbin/nginx", "cmdline": "nginx -g daemon off;"}, "/c.conf")
    assert argv == ["/usr/sbin/nginx", "-t", "-q", "-c", "/c.conf"]
