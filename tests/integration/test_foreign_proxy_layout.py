"""An nginx-only and an Apache-only deployment nobody here built: their own prefixes, file names,
relative paths, an included TLS snippet, a registry on another port. Started in a network namespace
of their own (prefixes rgn-/rga- plus this session's pid), audited with `regaudit audit --inside`
and no path option at all: the audit must find the proxy's TLS settings, its authentication and its
password file by itself (discovery from /proc, the configs as the running processes read them).

Each deployment carries defects the checks must pin to the foreign files: legacy protocols from an
included snippet, an unauthenticated catalog location (nginx), a world-readable password file and
key. Every process is stopped by PID and the namespace deleted at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lab
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HOST = "hub.internal.example"
APACHE_MODULES = ("mpm_event", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "headers",
                  "proxy", "proxy_http", "socache_shmcb", "ssl")


def _sh(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60, **kw)


def _wait_port(ns: str, port: int) -> None:
    for _ in range(100):
        if subprocess.run(["ip", "netns", "exec", ns, "nc", "-z", "-w", "1", "127.0.0.1", str(port)],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} in {ns}")


def _pki(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True)
    crt, key = directory / "hub.crt", directory / "hub.key"
    _sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         str(key), "-out", str(crt), "-subj", f"/CN={HOST}", "-days", "30", "-addext", f"subjectAltName=DNS:{HOST}"])
    key.chmod(0o644)  # seeded: a world-readable key
    return crt, key


def _htpasswd(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _sh(["htpasswd", "-i", "-B", "-c", str(path), "hubuser"], input="a-throwaway-test-password\n")
    path.chmod(0o644)  # seeded: world-readable


def _registry(root: Path, port: int) -> Path:
    (root / "data").mkdir(parents=True)
    config = root / "registry.yaml"
    config.write_text(f"version: 0.1\nlog:\n  formatter: json\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n  host: https://{HOST}\n")
    return config


class Namespace:
    """A network namespace with loopback up, and the processes started in it (stopped by PID)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pids: list[int] = []
        _sh(["ip", "netns", "add", name])
        _sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def spawn(self, argv: list[str], log: Path) -> int:
        with open(log, "w") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.pids.append(proc.pid)
        return proc.pid

    def daemon(self, argv: list[str], pid_file: Path) -> int:
        started = subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                                 timeout=60)
        assert started.returncode == 0, started.stderr
        for _ in range(50):
            if pid_file.exists() and pid_file.read_text().strip():
                pid = int(pid_file.read_text().split()[0])
                self.pids.append(pid)
                return pid
            time.sleep(0.1)
        raise AssertionError(f"{argv[0]} wrote no pid file {pid_file}")

    def audit(self, out: Path) -> dict[str, Any]:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
               "REGAUDIT_STATE_DIR": str(out / "state")}
        proc = subprocess.run(["ip", "netns", "exec", self.name, "regaudit", "audit", "--inside", "--no-progress",
                               "--format", "json", "--output", str(out)], capture_output=True, text=True, env=env,
                              timeout=240)
        assert "Traceback" not in proc.stderr, proc.stderr
        return json.loads((out / "regaudit.json").read_text())

    def close(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[Namespace]:
    reason = lab.available()
    if reason:
        pytest.skip(f"needs network namespaces: {reason}")
    prefix = request.param
    ns = Namespace(f"{prefix}foreign{os.getpid() % 100000}")
    try:
        yield ns
    finally:
        ns.close()


def _results(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [r for r in report["results"] if r["check"] == check]


@pytest.mark.parametrize("namespace", ["rgn-"], indirect=True)
def test_an_nginx_only_deployment_is_found_and_judged_by_itself(namespace: Namespace, tmp_path: Path) -> None:
    base = tmp_path / "srv"
    reg = _registry(base / "hub-registry", 5055)
    prefix = base / "edge"
    conf = prefix / "conf"
    (conf / "conf.d").mkdir(parents=True)
    (conf / "vhosts").mkdir()
    (prefix / "run").mkdir()
    (prefix / "logs").mkdir()
    (prefix / "tmp").mkdir()
    crt, _key = _pki(prefix / "pki")
    _htpasswd(conf / "secrets" / "users.db")
    (conf / "main.conf").write_text(f"""pid run/edge.pid;
error_log logs/error.log;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    include conf.d/*.conf;
    include vhosts/hub.vhost;
}}
""")
    (conf / "conf.d" / "tls-defaults.conf").write_text("ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n"
                                                        "ssl_ciphers HIGH:!aNULL:!MD5;\n")
    (conf / "vhosts" / "hub.vhost").write_text(f"""upstream hub_backend {{ server 127.0.0.1:5055; }}
server {{
    listen 443 ssl;
    server_name {HOST};
    ssl_certificate ../pki/hub.crt;
    ssl_certificate_key ../pki/hub.key;
    client_max_body_size 0;
    location /v2/ {{
        auth_basic "hub";
        auth_basic_user_file secrets/users.db;
        proxy_pass http://hub_backend;
    }}
    location = /v2/_catalog {{
        proxy_pass http://hub_backend;
    }}
}}
""")
    namespace.spawn(["docker-registry", "serve", str(reg)], tmp_path / "registry.log")
    _wait_port(namespace.name, 5055)
    namespace.daemon(["nginx", "-p", f"{prefix}/", "-c", "conf/main.conf"], prefix / "run" / "edge.pid")
    _wait_port(namespace.name, 443)

    report = namespace.audit(tmp_path / "out")
    tls = _results(report, "proxy.nginx-tls")
    assert [r["status"] for r in tls] == ["fail"], tls
    assert f"{conf}/conf.d/tls-defaults.conf:1) enables TLSv1, TLSv1.1" in tls[0]["message"]
    auth = _results(report, "proxy.nginx-auth")
    assert [r["status"] for r in auth] == ["fail"], auth
    assert "for /v2/_catalog" in auth[0]["message"] and f"{conf}/vhosts/hub.vhost:" in auth[0]["message"]
    assert "/v2/library/app/manifests/latest" not in auth[0]["message"]
    htpasswd = _results(report, "files.htpasswd")
    assert [(r["subject"], r["status"]) for r in htpasswd] == [(str(conf / "secrets" / "users.db"), "fail")]
    keys = _results(report, "files.tls-key")
    assert [(r["subject"], r["status"]) for r in keys] == [(str(prefix / "pki" / "hub.key"), "fail")]
    recipe = _results(report, "proxy.nginx-recipe")
    assert [r["status"] for r in recipe] == ["fail"]  # no API-version header mapping in this layout
    assert crt.exists()


@pytest.mark.parametrize("namespace", ["rga-"], indirect=True)
def test_an_apache_only_deployment_is_found_and_judged_by_itself(namespace: Namespace, tmp_path: Path) -> None:
    base = tmp_path / "srv"
    reg = _registry(base / "hub-registry", 5056)
    root = base / "httpd"
    (root / "conf" / "sites").mkdir(parents=True)
    (root / "run").mkdir()
    (root / "logs").mkdir()
    _pki(root / "pki")
    _htpasswd(root / "auth" / "users.htpasswd")
    modules = "\n".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in APACHE_MODULES)
    (root / "conf" / "httpd.conf").write_text(f"""ServerRoot "{root}"
DefaultRuntimeDir run
PidFile run/httpd.pid
Mutex file:run default
ErrorLog logs/error.log
ServerName {HOST}
{modules}
SSLSessionCache shmcb:run/ssl_scache(512000)
Listen 127.0.0.1:443
IncludeOptional conf/sites/*.conf
""")
    (root / "conf" / "sites" / "hub.conf").write_text(f"""<VirtualHost 127.0.0.1:443>
    ServerName {HOST}
    SSLEngine on
    SSLCertificateFile pki/hub.crt
    SSLCertificateKeyFile pki/hub.key
    SSLProtocol all -SSLv3
    SSLCipherSuite ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384
    RequestHeader set X-Forwarded-Proto "https"
    ProxyPass / http://127.0.0.1:5056/ nocanon
    ProxyPassReverse / http://127.0.0.1:5056/
    ProxyTimeout 900
    LimitRequestBody 0
    <Location /v2/>
        AuthType Basic
        AuthName "hub"
        AuthUserFile auth/users.htpasswd
        Require valid-user
    </Location>
</VirtualHost>
""")
    namespace.spawn(["docker-registry", "serve", str(reg)], tmp_path / "registry.log")
    _wait_port(namespace.name, 5056)
    namespace.daemon(["apache2", "-d", str(root), "-f", "conf/httpd.conf"], root / "run" / "httpd.pid")
    _wait_port(namespace.name, 443)

    report = namespace.audit(tmp_path / "out")
    tls = _results(report, "proxy.apache-tls")
    assert [r["status"] for r in tls] == ["fail"], tls
    assert "enables TLSv1, TLSv1.1" in tls[0]["message"]
    assert f"{root}/conf/sites/hub.conf:6" in tls[0]["message"]
    auth = _results(report, "proxy.apache-auth")
    assert [r["status"] for r in auth] == ["pass"], auth
    assert str(root / "auth" / "users.htpasswd") in auth[0]["message"]
    htpasswd = _results(report, "files.htpasswd")
    assert [(r["subject"], r["status"]) for r in htpasswd] == [(str(root / "auth" / "users.htpasswd"), "fail")]
    keys = _results(report, "files.tls-key")
    assert [(r["subject"], r["status"]) for r in keys] == [(str(root / "pki" / "hub.key"), "fail")]
    tmpfs = _results(report, "tmpfs.mounted")
    assert [r["status"] for r in tmpfs] == ["skip"] and "no nginx buffers requests" in tmpfs[0]["message"]
