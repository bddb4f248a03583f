"""Bringing a variant up and down.

Contract:
- `up(name, content=True, recreate=False)` leaves the variant running and returns its LabInfo. A
  variant already up and healthy is left as it is (unless `recreate`); anything else is torn down
  first. On any failure the half-built variant is torn down before the error propagates.
- `down(name)` stops every recorded process by PID, unmounts the tmpfs, deletes the namespaces,
  /etc/netns entries and the base dir; it works on partial state and when nothing exists.
- lab.json is written before the first process starts and after each one, so `down` always
  knows what to stop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import grp
import json
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import containers, netns, pki, procs, render
from .netns import LabError, run_in, sh
from .paths import Paths, lab_root
from .state import LabInfo, read, save
from .variants import (
    ADDRESSES,
    ALLOWED_V4,
    ALLOWED_V6,
    AUTH_HOSTNAME,
    DEBUG_ADDR,
    HOSTNAME,
    NGINX_LISTEN,
    OCSP_LISTEN,
    REGISTRY_PORT,
    TOKEN_PORT,
    WATCH_LISTEN,
    Variant,
    get,
)

TESTS_DIR = Path(__file__).resolve().parent.parent
DEFECTS_DIR = Path(__file__).resolve().parent / "defects"
STALE_UPLOAD_REPO = "myapp/backend"
STALE_UPLOAD_AGE = dt.timedelta(days=30)



def _log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise up/down of one variant across processes."""
    lab_root().mkdir(parents=True, exist_ok=True)
    with open(lab_root() / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def content_available() -> bool:
    """True when the content engineer's `lab.content` package exists."""
    pkg = Path(__file__).resolve().parent / "content"
    return (pkg / "__main__.py").exists() or (pkg / "__init__.py").exists()


def _py_env() -> dict[str, str]:
    return {"PYTHONPATH": str(TESTS_DIR)}


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


def _htpasswd_add(path: Path, user: str, password: str, scheme: str = "-B") -> None:
    """Add a user with htpasswd; the password goes through stdin (-i), never argv."""
    args = ["htpasswd", "-i", scheme]
    if not path.exists():
        args.append("-c")
    sh([*args, str(path), user], input=password + "\n")


def _write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, 0, 0)
    os.chmod(path, 0o644)
    return path


def is_up(name: str) -> bool:
    """True when the variant's lab.json says up and every recorded process and namespace is alive."""
    p = Paths.for_variant(name)
    try:
        data = read(p.state)
    except (OSError, ValueError):
        return False
    if data.get("status") != "up":
        return False
    if not set(data["namespaces"].values()) <= netns.existing():
        return False
    if not all(procs.alive(rec) for rec in data.get("processes", [])):
        return False
    return containers.running(data) if data.get("docker") else True


def up(name: str, content: bool = True, recreate: bool = False) -> LabInfo:
    """Bring variant `name` up (see module contract)."""
    v = get(name)
    content = content and v.populate
    with _lock(name):
        p = Paths.for_variant(name)
        if not recreate and is_up(name):
            data = read(p.state)
            if not content or data.get("content", {}).get("populated"):
                _log(f"{name}: already up, left running")
                return LabInfo(data)
        _down_locked(v, quiet=True)
        try:
            return _up_locked(v, p, content)
        except BaseException as exc:
            tails = _log_tails(p)
            _log(f"{name}: start failed ({exc}); tearing down")
            _down_locked(v, quiet=True)
            if isinstance(exc, LabError) and tails:
                raise LabError(f"{exc}\n{tails}") from exc
            raise


def _log_tails(p: Paths) -> str:
    out = []
    for log in sorted(p.base.glob("**/*.log")) if p.base.exists() else []:
        try:
            lines = log.read_text(errors="replace").splitlines()[-8:]
        except OSError:
            continue
        if lines:
            out.append(f"--- {log}\n" + "\n".join(lines))
    return "\n".join(out)


def _up_locked(v: Variant, p: Paths, content: bool) -> LabInfo:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    p.base.mkdir(parents=True, exist_ok=True)
    os.chmod(p.base, 0o755)
    state = _initial_state(v, p)
    save(p.state, state)

    _prepare_files(v, p, state)
    timings["files"] = round(time.monotonic() - t0, 2)
    state["namespaces"] = netns.create(v)
    save(p.state, state)
    timings["netns"] = round(time.monotonic() - t0, 2)
    if not v.containers and v.has_nginx:
        _mount_tmpfs(v, p, state)
    if v.firewall:
        _apply_firewall(v, state)
    reg_ns = v.ns("registry")
    if v.containers:
        _start_container_stack(v, p, state)
        timings["engine_and_images"] = state.pop("_engine_seconds")
    else:
        _start_stack(v, p, state)
    timings["stack"] = round(time.monotonic() - t0, 2)
    if v.auth == "token":
        _start_token_service(v, p, state, required=content)
    if content:
        if not content_available():
            raise LabError("lab.content (tests/lab/content/) is not present: use `up --no-content`")
        _log(f"{v.name}: populating content (lab.content populate)")
        run_in(reg_ns, ["python3", "-m", "lab.content", "populate", str(p.state)], env=_py_env(),
               timeout=900, check=True)
        # lab.content may have written its own keys into lab.json: re-read before updating.
        state = {**read(p.state), "processes": state["processes"]}
        state["content"] = {"populated": True}
    timings["total"] = round(time.monotonic() - t0, 2)
    state["timings"] = timings
    state["status"] = "up"
    save(p.state, state)
    _log(f"{v.name}: up in {timings['total']}s ({p.state})")
    return LabInfo(state)


def _initial_state(v: Variant, p: Paths) -> dict[str, Any]:
    token = v.auth == "token"
    scheme = {"basic": "basic", "open": "none", "token": "token"}[v.auth]
    defects = DEFECTS_DIR / f"{v.name}.yaml"
    return {
        "variant": v.name,
        "status": "starting",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "base_dir": str(p.base),
        "state_file": str(p.state),
        "hostname": HOSTNAME,
        "url": f"https://{HOSTNAME}",
        "namespaces": {},
        "addresses": {r: {"v4": a4, "v6": a6} for r, (a4, a6) in ADDRESSES.items()},
        "allowed_sources": {"v4": list(ALLOWED_V4), "v6": list(ALLOWED_V6)},
        "registry": {
            "config": str(p.registry_conf(0)),
            "configs": [str(p.registry_conf(i)) for i in range(len(v.registry_addrs))],
            "storage_root": str(p.storage),
            "listen": list(v.registry_addrs),
            "port": REGISTRY_PORT,
            "debug_addr": DEBUG_ADDR,
            "health_url": f"http://{DEBUG_ADDR}/debug/health",
            "pid": None,
            "pids": [],
            "log": str(p.registry_log(0)),
        },
        "proxies": v.proxies,
        "nginx": None if not v.has_nginx else {
            "config": str(p.nginx_conf), "pid": None, "pid_file": str(p.nginx_pid),
            "listen": NGINX_LISTEN if v.has_apache else ["0.0.0.0:443", "[::]:443", "0.0.0.0:80", "[::]:80"],
            "proxy_temp_path": str(p.proxy_temp), "client_body_temp_path": str(p.client_body_temp),
        },
        "apache": None if not v.has_apache else {
            "config": str(p.apache_conf), "server_root": str(p.apache), "pid": None,
            "pid_file": str(p.apache_pid), "listen": ["0.0.0.0:443", "[::]:443", "0.0.0.0:80", "[::]:80"],
            "env": render.apache_env(p),
        },
        "tls": {},
        "auth": {
            "scheme": scheme,
            "htpasswd": None if token else str(p.htpasswd),
            "username": "auditor",
            "password_file": str(p.password_file),
            "users": {},
        },
        "token": None if not token else {
            "realm": render.token_realm(), "service": HOSTNAME, "host": AUTH_HOSTNAME, "port": TOKEN_PORT,
            "listen": f"[::]:{TOKEN_PORT}", "pid": None, "log": str(p.logs / "token-service.log"),
        },
        "tmpfs": None if not v.has_nginx else {"mountpoint": str(p.tmpfs), "size": v.tmpfs_size,
                                               "options": render.tmpfs_options(v)},
        "fstab": str(p.fstab),
        "scan_dir": str(p.scans),
        "cosign": {
            "public_key": str(p.pki / "cosign.pub"), "private_key": str(p.pki / "cosign.key"),
            "untrusted_public_key": str(p.pki / "cosign-untrusted.pub"),
            "untrusted_private_key": str(p.pki / "cosign-untrusted.key"),
        },
        "content_profile": v.content_profile,
        "content": {"populated": False},
        "defects": str(defects) if defects.exists() else None,
        "firewall": {"enabled": v.firewall, "rules_v4": [], "rules_v6": []},
        "stale_uploads": [],
        "processes": [],
        "python_path": str(TESTS_DIR),
    }


def _prepare_files(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    for d in (p.registry, p.storage, p.nginx, p.nginx / "tmp", p.apache, p.apache / "logs", p.apache_run,
              p.auth, p.tmpfs, p.scans, p.logs):
        d.mkdir(parents=True, exist_ok=True)
    p.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(p.secrets, 0o700)
    ips = [ADDRESSES["registry"][0], ADDRESSES["registry"][1]]
    state["tls"] = pki.build(p.pki, dns=[HOSTNAME, AUTH_HOSTNAME], ips=ips, cert_days=v.cert_days,
                             key_mode=v.key_mode, ocsp_url=f"http://{OCSP_LISTEN}/")
    www = grp.getgrnam("www-data").gr_gid
    users: dict[str, Any] = {}
    if v.auth == "token":
        users = _prepare_token(p, state)
    else:
        pw = secrets.token_urlsafe(24)
        _write_secret(p.password_file, pw)
        _htpasswd_add(p.htpasswd, "auditor", pw)
        users["auditor"] = {"password_file": str(p.password_file), "role": "all", "hash": "bcrypt"}
        if v.legacy_htpasswd_entry:
            legacy_pw = secrets.token_urlsafe(24)
            legacy_file = p.secrets / "legacy.password"
            _write_secret(legacy_file, legacy_pw)
            _htpasswd_add(p.htpasswd, "legacy", legacy_pw, scheme="-s")  # {SHA}: seeded defect
            users["legacy"] = {"password_file": str(legacy_file), "role": "all", "hash": "sha1"}
        os.chown(p.htpasswd, 0, www)
        os.chmod(p.htpasswd, v.htpasswd_mode)
    state["auth"]["users"] = users
    notify_token = None
    if v.notify:  # the watcher's shared token: the registry sends it, `regaudit watch serve --token-file` expects it
        notify_token = secrets.token_urlsafe(32)
        _write_secret(p.secrets / "watch-token", notify_token)
        state["watch"] = {"listen": WATCH_LISTEN, "url": f"http://{WATCH_LISTEN}/events",
                          "token_file": str(p.secrets / "watch-token")}

    if v.containers:
        containers.write_configs(v, p, containers.registry_config_text(
            render.registry_config(v, p, f":{REGISTRY_PORT}", debug=True), p), containers.nginx_config_text(v))
        _write_config(p.apache_conf, render.apache_config(v, p))
        return
    for i, addr in enumerate(v.registry_addrs):
        _write_config(p.registry_conf(i), render.registry_config(v, p, addr, debug=(i == 0),
                                                                 token=state["token"], notify_token=notify_token))
    if v.has_nginx:
        _write_config(p.nginx_conf, render.nginx_config(v, p, render.registry_upstream(v)))
    if v.has_apache:
        _write_config(p.apache_conf, render.apache_config(v, p))
    _write_config(p.fstab, "# regaudit lab fstab (the auditor's --fstab option reads it)\n"
                  + (render.fstab_line(v, p) if v.has_nginx else ""))
    if v.stale_uploads:
        state["stale_uploads"] = [_stale_upload(p)]


def _prepare_token(p: Paths, state: dict[str, Any]) -> dict[str, Any]:
    """Token material from the content engineer's `lab.content.token.prepare` (signing root and
    key, ACL with a pull-only and a push user, 0600 credentials files); fills state["token"]."""
    try:
        from .content import token as ctoken
    except ImportError as exc:
        raise LabError(f"the token variant needs lab.content.token (tests/lab/content): {exc}") from exc
    t = ctoken.prepare(p.base, HOSTNAME)
    state["token"].update({
        "issuer": t["issuer"], "service": t["service"], "rootcertbundle": t["rootcertbundle"],
        "key": t["key"], "cert": t["cert"], "acl": t["acl"], "credentials": t["credentials"],
        "users": t["users"], "ca": state["tls"]["ca"],
    })
    users: dict[str, Any] = {}
    for role, cred_file in t["credentials"].items():
        body = json.loads(Path(cred_file).read_text())
        pw_file = p.password_file if role == "pull" else p.secrets / f"{body['username']}.password"
        _write_secret(pw_file, body["password"])
        users[body["username"]] = {"password_file": str(pw_file), "credentials": cred_file,
                                   "role": "pull-only" if role == "pull" else "push"}
    state["auth"]["username"] = t["users"]["pull"]
    return users


def _stale_upload(p: Paths) -> dict[str, str]:
    """An incomplete upload in the registry's disk layout, started STALE_UPLOAD_AGE ago."""
    started = dt.datetime.now(dt.UTC).replace(microsecond=0) - STALE_UPLOAD_AGE
    uid = str(uuid.uuid4())
    d = p.storage / "docker/registry/v2/repositories" / STALE_UPLOAD_REPO / "_uploads" / uid
    (d / "hashstates" / "sha256").mkdir(parents=True, exist_ok=True)
    (d / "data").write_bytes(os.urandom(4096))
    stamp = started.isoformat().replace("+00:00", "Z")
    (d / "startedat").write_text(stamp)
    ts = started.timestamp()
    for f in (d / "data", d / "startedat"):
        os.utime(f, (ts, ts))
    return {"repository": STALE_UPLOAD_REPO, "uuid": uid, "path": str(d), "startedat": stamp}


def _mount_tmpfs(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    p.tmpfs.mkdir(parents=True, exist_ok=True)
    opts = ",".join((f"size={v.tmpfs_size}", *v.tmpfs_options, "mode=0755"))
    sh(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(p.tmpfs)])
    state["tmpfs"]["mounted"] = True
    save(p.state, state)
    for d in (p.proxy_temp, p.client_body_temp):
        d.mkdir(exist_ok=True)


def firewall_rules(v: Variant) -> tuple[list[list[str]], list[list[str]]]:
    """The guide's rules with docs/guide-notes.md#firewall-loopback-and-ipv6 (lo accepted first), as iptables / ip6tables argv lists."""
    port = str(REGISTRY_PORT)
    out: tuple[list[list[str]], list[list[str]]] = ([], [])
    for tool, sources, rules in (("iptables", ALLOWED_V4, out[0]), ("ip6tables", ALLOWED_V6, out[1])):
        rules.append([tool, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"])
        for src in sources:
            rules.append([tool, "-A", "INPUT", "-s", src, "-p", "tcp", "--dport", port, "-j", "ACCEPT"])
        rules.append([tool, "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "DROP"])
    return out


def _apply_firewall(v: Variant, state: dict[str, Any]) -> None:
    v4, v6 = firewall_rules(v)
    for rule in (*v4, *v6):
        run_in(v.ns("registry"), rule, check=True)
    state["firewall"]["rules_v4"] = [" ".join(r) for r in v4]
    state["firewall"]["rules_v6"] = [" ".join(r) for r in v6]


def _record(p: Paths, state: dict[str, Any], name: str, pid: int, ns: str, match: str) -> None:
    state["processes"].append({"name": name, "pid": pid, "ns": ns, "match": match})
    save(p.state, state)


def wait_tcp(ns: str, host: str, port: int, timeout: float = 20.0, what: str = "",
             rec: dict[str, Any] | None = None) -> None:
    """Wait until host:port accepts TCP connections from inside ns (fails early if `rec` dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_in(ns, ["nc", "-z", "-w", "1", host, str(port)], timeout=5).returncode == 0:
            return
        if rec is not None and procs.exited(rec):
            raise LabError(f"{what or 'service'} exited before listening on {host}:{port}")
        time.sleep(0.1)
    raise LabError(f"{what or 'service'} not listening on {host}:{port} in {ns} after {timeout}s")


def _check_host(addr: str) -> str:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return host or "127.0.0.1"


def _start_ocsp_responder(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    """The OCSP responder Apache staples from (named in the certificates), before Apache starts."""
    if not v.ocsp_stapling:
        return
    ns = v.ns("registry")
    pid = procs.spawn(ns, render.ocsp_responder_argv(p), p.logs / "ocsp-responder.log", env=_py_env())
    _record(p, state, "ocsp-responder", pid, ns, "ocsp")
    host, port = OCSP_LISTEN.rsplit(":", 1)
    wait_tcp(ns, host, int(port), what="OCSP responder", rec=state["processes"][-1])


def _start_stack(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    ns = v.ns("registry")
    for i in range(len(v.registry_addrs)):
        conf = p.registry_conf(i)
        pid = procs.spawn(ns, ["docker-registry", "serve", str(conf)], p.registry_log(i))
        _record(p, state, f"registry-{i}" if i else "registry", pid, ns, str(conf))
        state["registry"]["pids"].append(pid)
        if i == 0:
            state["registry"]["pid"] = pid
    for i, addr in enumerate(v.registry_addrs):
        wait_tcp(ns, _check_host(addr), REGISTRY_PORT, what=f"registry ({p.registry_log(i)})",
                 rec=state["processes"][i])
    wait_tcp(ns, "127.0.0.1", 5001, what="registry debug server")

    _start_ocsp_responder(v, p, state)
    if v.has_nginx:
        # nginx in the foreground (-g 'daemon off;'): the PID spawned is the master's own
        pid = procs.spawn(ns, render.nginx_argv(p), p.logs / "nginx-start.log")
        _record(p, state, "nginx", pid, ns, str(p.nginx_conf))
        state["nginx"]["pid"] = pid
        state["nginx"]["argv"] = render.nginx_argv(p)
        save(p.state, state)
        if v.has_apache:
            wait_tcp(ns, "127.0.0.1", 8080, what="nginx", rec=state["processes"][-1])
        else:
            wait_tcp(ns, "127.0.0.1", 443, what="nginx", rec=state["processes"][-1])
            wait_tcp(ns, "::1", 443, what="nginx (IPv6)", rec=state["processes"][-1])
            _warm_nginx_stapling(v)
    if v.has_apache:
        _start_apache(v, p, state)


def _warm_nginx_stapling(v: Variant) -> None:
    """nginx fetches an OCSP response only after a client asked for one (and staples from the next
    handshake on); ask once per certificate so the lab staples from its first audit."""
    if not v.ocsp_stapling:
        return
    for cipher in ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"):
        netns.run_in(v.ns("registry"), ["openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", HOSTNAME,
                                        "-tls1_2", "-cipher", cipher, "-status"], input="", timeout=15, check=False)
    time.sleep(1.0)


def _start_apache(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    ns = v.ns("registry")
    pid = procs.run_daemon(ns, render.apache_argv(p), p.apache_pid,
                           p.logs / "apache-start.log", env=render.apache_env(p))
    state["apache"]["argv"] = render.apache_argv(p)
    _record(p, state, "apache", pid, ns, str(p.apache_conf))
    state["apache"]["pid"] = pid
    save(p.state, state)
    wait_tcp(ns, "127.0.0.1", 443, what="apache")
    wait_tcp(ns, "::1", 443, what="apache (IPv6)")


def _start_container_stack(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    """dockerd in the registry namespace, images from Debian binaries, the registry and nginx
    containers (tests/lab/containers.py), DOCKER-USER rules, then Apache on the host."""
    why = containers.available()
    if why:
        raise LabError(why)
    t0 = time.monotonic()
    ns = v.ns("registry")
    containers.start_engine(v, p, state)
    save(p.state, state)
    state["containers_images"] = containers.build_images(p)
    state["_engine_seconds"] = round(time.monotonic() - t0, 2)
    containers.start_containers(v, p, state)
    rules = containers.docker_user_rules(v)
    for rule in rules:
        run_in(ns, rule, check=True)
    state["firewall"]["docker_user_v4"] = [" ".join(r) for r in rules]
    reg, ngx = state["containers"]["registry"], state["containers"]["nginx"]
    state["registry"].update({
        "config": str(containers.registry_config_path(p)), "configs": [str(containers.registry_config_path(p))],
        "config_in_container": containers.CONFIG_IN_CONTAINER, "storage_root": containers.volume_path(p),
        "pid": reg["pid"], "pids": [reg["pid"]], "container": "registry", "log": None,
        "listen": [f":{REGISTRY_PORT}"] if v.containers == "weak" else [f"127.0.0.1:{REGISTRY_PORT}"],
    })
    state["nginx"].update({
        "config": str(containers.nginx_config_path(p)), "config_in_container": containers.NGINX_CONF_IN_CONTAINER,
        "pid": ngx["pid"], "pid_file": None, "container": "nginx",
        "proxy_temp_path": f"{containers.NGINX_TEMP}/proxy",
        "client_body_temp_path": f"{containers.NGINX_TEMP}/body",
    })
    state["tmpfs"] = {"mountpoint": containers.NGINX_TEMP if v.containers != "weak" else None,
                      "size": v.tmpfs_size, "options": "rw,noexec,nosuid", "mounted": False,
                      "in_container": "nginx"}
    save(p.state, state)
    wait_tcp(ns, "127.0.0.1", REGISTRY_PORT, what="registry container")
    wait_tcp(ns, "127.0.0.1", 8080, what="nginx container")
    _start_ocsp_responder(v, p, state)
    pid = procs.run_daemon(ns, render.apache_argv(p), p.apache_pid,
                           p.logs / "apache-start.log", env=render.apache_env(p))
    state["apache"]["argv"] = render.apache_argv(p)
    _record(p, state, "apache", pid, ns, str(p.apache_conf))
    state["apache"]["pid"] = pid
    wait_tcp(ns, "127.0.0.1", 443, what="apache")
    wait_tcp(ns, "::1", 443, what="apache (IPv6)")


def _start_token_service(v: Variant, p: Paths, state: dict[str, Any], required: bool) -> None:
    """Start `python3 -m lab.content token-service <lab.json>` in the registry namespace.

    With content not requested (`up --no-content`), a token service that cannot start is noted in
    lab.json (token.note) instead of failing the whole variant.
    """
    if not content_available():
        _log(f"{v.name}: lab.content absent: token service not started")
        state["token"]["note"] = "lab.content absent: token service not started"
        return
    ns = v.ns("registry")
    pid = procs.spawn(ns, ["python3", "-m", "lab.content", "token-service", str(p.state)],
                      Path(state["token"]["log"]), env=_py_env())
    _record(p, state, "token-service", pid, ns, "token-service")
    state["token"]["pid"] = pid
    save(p.state, state)
    try:
        wait_tcp(ns, "127.0.0.1", TOKEN_PORT, what="token service", rec=state["processes"][-1])
    except LabError:
        rec = state["processes"][-1]
        if required or procs.alive(rec):
            raise
        tail = Path(state["token"]["log"]).read_text(errors="replace").strip().splitlines()[-1:]
        state["token"]["note"] = f"token service exited at start: {' '.join(tail)}"
        state["token"]["pid"] = None
        state["processes"].pop()
        _log(f"{v.name}: {state['token']['note']} (continuing: --no-content)")


def down(name: str, keep_files: bool = False) -> list[str]:
    """Tear variant `name` down completely (see module contract); returns what was done."""
    v = get(name)
    with _lock(name):
        return _down_locked(v, quiet=False, keep_files=keep_files)


def _down_locked(v: Variant, quiet: bool, keep_files: bool = False) -> list[str]:
    p = Paths.for_variant(v.name)
    done: list[str] = []
    records: list[dict[str, Any]] = []
    with contextlib.suppress(OSError, ValueError):
        records = list(read(p.state).get("processes", []))
    with contextlib.suppress(OSError, ValueError):
        done += containers.stop_engine(read(p.state))
    for rec in reversed(records):
        done.append(procs.stop(rec))
    # Processes we started but could not record (e.g. a failed start): identified by PID, living in
    # our namespaces with our base dir in their command line.
    base = str(p.base)
    for role in ("registry", "proxy", "ci", "runtime", "outsider", "switch"):
        for pid in netns.namespace_pids(v.ns(role)):
            if base in procs.cmdline(pid):
                done.append(procs.stop({"name": "unrecorded", "pid": pid, "match": base}))
    if p.tmpfs.exists() and os.path.ismount(p.tmpfs):
        if sh(["umount", str(p.tmpfs)], check=False).returncode != 0:
            sh(["umount", "-l", str(p.tmpfs)], check=False)
        done.append(f"unmounted {p.tmpfs}")
    if p.base.exists():
        done += containers.unmount_below(p.base)
    done += [f"deleted netns {ns}" for ns in netns.destroy(v)]
    if not keep_files and p.base.exists():
        shutil.rmtree(p.base, ignore_errors=True)
        done.append(f"removed {p.base}")
    if not quiet:
        for line in done:
            _log(f"{v.name}: {line}")
    return done
