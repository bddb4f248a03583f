"""Container variants: the registry and nginx in containers on a real Docker Engine (Debian's docker.io).

Contract:
- `start_engine(v, p, state)` starts one dockerd for the variant in the registry host's network
  namespace (`nsenter --net=/run/netns/NS`: `ip netns exec` would remount /sys and hide the cgroups
  dockerd needs), with its own --data-root, --exec-root, --pidfile and unix socket, storage driver
  vfs; it is recorded in lab.json like every lab process (stopped by PID, after its containers).
- `build_images(docker, work)` builds `regaudit-lab/registry:2.8` and `regaudit-lab/nginx:1.22` with
  `docker import` from root filesystems holding Debian's binaries and the libraries `ldd` names (no
  image registry is reachable here).
- `run_lines(v, p)` are the exact `docker run` lines of the variant (also written to
  <base>/containers/run.sh and lab.json `containers.run_lines`, so reports can name what a user edits);
  `start_containers` runs them and records each container (id, pid, mounts) in lab.json.
- `stop_engine(state)` removes the containers (volumes kept until the base dir goes) and stops dockerd.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from . import procs
from .netns import LabError, sh
from .paths import Paths
from .variants import ADDRESSES, ALLOWED_V4, REGISTRY_PORT, Variant

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client (a static /usr/local/bin/docker may shadow it in PATH)
REGISTRY_IMAGE = "regaudit-lab/registry:2.8"
NGINX_IMAGE = "regaudit-lab/nginx:1.22"
NETWORK = "regaudit"
SUBNET = "172.30.0.0/24"
REGISTRY_IP = "172.30.0.10"
NGINX_IP = "172.30.0.20"
VOLUME = "registry-data"
CONFIG_IN_CONTAINER = "/etc/docker/registry/config.yml"
NGINX_CONF_IN_CONTAINER = "/etc/nginx/nginx.conf"
NGINX_TEMP = "/var/lib/nginx"
NGINX_PORT = 8080
STORAGE_IN_CONTAINER = "/var/lib/registry"
ENGINE_START_TIMEOUT = 60.0


def available() -> str | None:
    """None when dockerd and Debian's docker client are installed, else why not."""
    for path in (DOCKERD, DOCKER, "/usr/sbin/docker-proxy", "/usr/bin/containerd", "/usr/sbin/runc", COMPOSE):
        if not os.path.exists(path):
            return f"{path} is missing (install Debian's docker.io and docker-compose: scripts/setup.sh)"
    return None


def engine_dir(p: Paths) -> Path:
    return p.base / "docker"


def socket_path(p: Paths) -> Path:
    return engine_dir(p) / "docker.sock"


def docker_host(p: Paths) -> str:
    return f"unix://{socket_path(p)}"


def docker(p: Paths, *args: str, timeout: float = 120.0, check: bool = True,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run Debian's docker client against the variant's engine."""
    return sh([DOCKER, "-H", docker_host(p), *args], timeout=timeout, check=check, input=input)


# ---------------------------------------------------------------- the engine
def start_engine(v: Variant, p: Paths, state: dict[str, Any]) -> int:
    """Start dockerd in the registry namespace; returns its PID once the API answers. A dockerd that
    exits at once is started a second time (seen once under load, with an empty log), never more."""
    try:
        return _start_engine(v, p, state)
    except LabError as exc:
        if "exited at start" not in str(exc):
            raise
        print(f"[lab] {v.name}: {exc}; starting dockerd again", flush=True)
        state["processes"] = [r for r in state["processes"] if r.get("name") != "dockerd"]
        return _start_engine(v, p, state)


def _start_engine(v: Variant, p: Paths, state: dict[str, Any]) -> int:
    d = engine_dir(p)
    for sub in ("data", "exec"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    ns = v.ns("registry")
    argv = [DOCKERD, "--storage-driver", "vfs", "--data-root", str(d / "data"), "--exec-root", str(d / "exec"),
            "--pidfile", str(d / "docker.pid"), "-H", docker_host(p), "--bip", "172.31.0.1/24",
            "--cgroup-parent", f"/regaudit-{v.name}", "--shutdown-timeout", "5", "--log-level", "warn"]
    log = p.logs / "dockerd.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "--", *argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    procs._CHILDREN[proc.pid] = proc  # nsenter execs dockerd in place: the PID is dockerd's
    rec = {"name": "dockerd", "pid": proc.pid, "ns": ns, "match": str(socket_path(p))}
    state["processes"].append(rec)
    state["docker"] = {"host": docker_host(p), "socket": str(socket_path(p)), "pid": proc.pid,
                       "data_root": str(d / "data"), "exec_root": str(d / "exec"), "log": str(log),
                       "argv": argv}
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while time.monotonic() < deadline:
        # the Popen itself, not /proc/PID/cmdline: that reads empty while nsenter execs dockerd
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LabError(f"dockerd exited at start (exit status {proc.returncode}): " + " | ".join(tail))
        if socket_path(p).exists() and docker(p, "version", "--format", "{{.Server.Version}}",
                                              check=False, timeout=10).returncode == 0:
            return proc.pid
        time.sleep(0.2)
    raise LabError(f"dockerd did not answer on {socket_path(p)} within {ENGINE_START_TIMEOUT}s; see {log}")


def stop_engine(state: dict[str, Any]) -> list[str]:
    """Remove the variant's containers and stop its dockerd (by recorded PID); tolerant of partial state."""
    done: list[str] = []
    info = state.get("docker") or {}
    host = info.get("host")
    rec = next((r for r in state.get("processes", []) if r.get("name") == "dockerd"), None)
    if rec is None and info.get("pid"):
        rec = {"name": "dockerd", "pid": info["pid"], "match": info.get("socket")}
    pidfile = Path(str(info.get("data_root") or "")).parent / "docker.pid"
    if rec is not None and not procs.alive(rec) and pidfile.is_file():
        # the PID dockerd wrote itself (the one we started), checked against its own socket path
        text = pidfile.read_text().strip()
        if text.isdigit():
            rec = {**rec, "pid": int(text)}
    if host and rec and procs.alive(rec):
        cp = sh([DOCKER, "-H", host, "ps", "-aq"], check=False, timeout=30)
        ids = cp.stdout.split()
        if ids:
            sh([DOCKER, "-H", host, "rm", "-f", *ids], check=False, timeout=60)
            done.append(f"removed containers {' '.join(i[:12] for i in ids)}")
        done.append(procs.stop(rec, grace=20.0))
    return done


def running(state: dict[str, Any]) -> bool:
    """Whether the variant's registry and nginx containers are running (a container variant is up
    only then)."""
    host = (state.get("docker") or {}).get("host")
    if not host:
        return False
    cp = sh([DOCKER, "-H", host, "inspect", "--format", "{{.State.Running}}", "registry", "nginx"], check=False,
            timeout=30)
    return cp.returncode == 0 and cp.stdout.split() == ["true", "true"]


def unmount_below(base: Path) -> list[str]:
    """Lazily unmount anything still mounted below `base` (a dockerd that died mid-way)."""
    prefix = str(base).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            found.append(point)
    for point in sorted(found, key=len, reverse=True):
        sh(["umount", "-l", point], check=False)
    return [f"unmounted {m}" for m in found]


# ---------------------------------------------------------------- images from Debian binaries
def _libraries(binary: str) -> list[str]:
    out = sh(["ldd", binary]).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def _copy(src: str, root: Path, dest: str | None = None) -> None:
    target = root / (dest or src).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(src), target)


def _base_rootfs(root: Path) -> None:
    for d in ("etc", "tmp", "run", "var/log", "dev", "proc", "sys"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/false\n"
                                     "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
                                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n")
    (root / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")


def registry_rootfs(root: Path) -> None:
    """Debian's docker-registry (it needs only libc) as /bin/registry, like the upstream image."""
    _base_rootfs(root)
    _copy("/usr/bin/docker-registry", root, "/bin/registry")
    for lib in _libraries("/usr/bin/docker-registry"):
        _copy(lib, root)
    for d in ("etc/docker/registry", "var/lib/registry"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / CONFIG_IN_CONTAINER.lstrip("/")).write_text("# replaced by a bind mount\n")


def nginx_rootfs(root: Path) -> None:
    """Debian's nginx and the libraries ldd names; the config comes from a bind mount."""
    _base_rootfs(root)
    _copy("/usr/sbin/nginx", root)
    for lib in _libraries("/usr/sbin/nginx"):
        _copy(lib, root)
    for d in ("etc/nginx", "var/lib/nginx", "var/log/nginx", "usr/share/nginx"):
        (root / d).mkdir(parents=True, exist_ok=True)
    _copy("/etc/nginx/mime.types", root)
    (root / NGINX_CONF_IN_CONTAINER.lstrip("/")).write_text("# replaced by a bind mount\n")


def _import(p: Paths, root: Path, image: str, changes: list[str]) -> None:
    tar = subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-c", "."], capture_output=True,
                         check=True, timeout=120).stdout
    args = [DOCKER, "-H", docker_host(p), "import"]
    for change in changes:
        args += ["--change", change]
    cp = subprocess.run([*args, "-", image], input=tar, capture_output=True, timeout=300, check=False)
    if cp.returncode != 0:
        raise LabError(f"docker import {image} failed: {cp.stderr.decode(errors='replace').strip()}")


def build_images(p: Paths) -> dict[str, str]:
    """Build both images into the variant's engine; returns image -> how it was built."""
    work = p.base / "images"
    shutil.rmtree(work, ignore_errors=True)
    registry_rootfs(work / "registry")
    _import(p, work / "registry", REGISTRY_IMAGE, [
        'ENTRYPOINT ["/bin/registry", "serve"]', f'CMD ["{CONFIG_IN_CONTAINER}"]',
        f"VOLUME {STORAGE_IN_CONTAINER}", f"EXPOSE {REGISTRY_PORT}"])
    nginx_rootfs(work / "nginx")
    _import(p, work / "nginx", NGINX_IMAGE, [
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["nginx", "-g", "daemon off;"]',
        f"EXPOSE {NGINX_PORT}"])
    shutil.rmtree(work, ignore_errors=True)
    return {REGISTRY_IMAGE: "docker import of /usr/bin/docker-registry + libc (Debian)",
            NGINX_IMAGE: "docker import of /usr/sbin/nginx + the libraries ldd names (Debian)"}


# ---------------------------------------------------------------- the deployment
def registry_config_path(p: Paths) -> Path:
    return p.base / "containers" / "registry" / "config.yml"


def nginx_config_path(p: Paths) -> Path:
    return p.base / "containers" / "nginx" / "nginx.conf"


def run_lines(v: Variant, p: Paths) -> dict[str, list[str]]:
    """The exact `docker run` argv of each container (name -> argv, without the -H option)."""
    weak = v.containers == "weak"
    reg = ["docker", "run", "-d", "--name", "registry", "--network", NETWORK, "--ip", REGISTRY_IP]
    if weak:
        # --privileged cannot start here (runc cannot apply CAP_SYS_RESOURCE, missing from this machine's
        # bounding set): added capabilities are the seeded privilege defect instead
        reg += ["-p", f"{REGISTRY_PORT}:{REGISTRY_PORT}", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
                "-v", f"{registry_config_path(p)}:{CONFIG_IN_CONTAINER}"]
    else:
        reg += ["-p", f"127.0.0.1:{REGISTRY_PORT}:{REGISTRY_PORT}", "--restart", "unless-stopped", "--read-only",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "-v", f"{registry_config_path(p)}:{CONFIG_IN_CONTAINER}:ro"]
    reg += ["-v", f"{VOLUME}:{STORAGE_IN_CONTAINER}", REGISTRY_IMAGE]
    ngx = ["docker", "run", "-d", "--name", "nginx", "--network", NETWORK, "--ip", NGINX_IP,
           "-p", f"127.0.0.1:{NGINX_PORT}:{NGINX_PORT}", "--restart", "unless-stopped"]
    if not weak:
        ngx += ["--read-only", "--tmpfs", f"{NGINX_TEMP}:rw,noexec,nosuid,size={v.tmpfs_size}",
                "--tmpfs", "/run:rw,noexec,nosuid,size=1m"]
    ngx += ["-v", f"{nginx_config_path(p)}:{NGINX_CONF_IN_CONTAINER}:ro", NGINX_IMAGE]
    return {"registry": reg, "nginx": ngx}


def docker_user_rules(v: Variant) -> list[list[str]]:
    """DOCKER-USER rules for the published registry port (hardened): the guide's sources, then drop.
    Inserted in order before dockerd's trailing RETURN."""
    if v.containers == "weak":
        return []
    port = str(REGISTRY_PORT)
    rules = [["iptables", "-I", "DOCKER-USER", str(i + 1), "-s", src, "-p", "tcp", "--dport", port, "-j", "RETURN"]
             for i, src in enumerate(ALLOWED_V4)]
    rules.append(["iptables", "-I", "DOCKER-USER", str(len(rules) + 1), "-i", "eth0", "-p", "tcp",
                  "--dport", port, "-j", "DROP"])
    return rules


def write_configs(v: Variant, p: Paths, registry_text: str, nginx_text: str) -> None:
    for path, text in ((registry_config_path(p), registry_text), (nginx_config_path(p), nginx_text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chown(path, 0, 0)
        os.chmod(path, 0o644)
    if v.containers == "weak":
        os.chmod(registry_config_path(p), 0o666)  # seeded defect: world-writable, mounted read-write


COMPOSE = "/usr/bin/docker-compose"  # Debian's docker-compose (1.29)
COMPOSE_PROJECT = "regaudit"


def compose_path(p: Paths) -> Path:
    return p.base / "containers" / "docker-compose.yml"


def compose_doc(v: Variant, p: Paths) -> dict[str, Any]:
    """The weak variant as a compose file: the same containers `run_lines` would start."""
    return {
        "version": "3.7",
        "services": {
            "registry": {
                "container_name": "registry", "image": REGISTRY_IMAGE, "ports": [f"{REGISTRY_PORT}:{REGISTRY_PORT}"],
                "cap_add": ["SYS_ADMIN", "NET_ADMIN"],
                "volumes": [f"{registry_config_path(p)}:{CONFIG_IN_CONTAINER}", f"{VOLUME}:{STORAGE_IN_CONTAINER}"],
                "networks": {NETWORK: {"ipv4_address": REGISTRY_IP}},
            },
            "nginx": {
                "container_name": "nginx", "image": NGINX_IMAGE, "ports": [f"127.0.0.1:{NGINX_PORT}:{NGINX_PORT}"],
                "restart": "unless-stopped", "volumes": [f"{nginx_config_path(p)}:{NGINX_CONF_IN_CONTAINER}:ro"],
                "networks": {NETWORK: {"ipv4_address": NGINX_IP}},
            },
        },
        "volumes": {VOLUME: {"name": VOLUME}},
        "networks": {NETWORK: {"name": NETWORK, "ipam": {"config": [{"subnet": SUBNET}]}}},
    }


def start_with_compose(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    """`docker-compose up -d` of the variant's compose file (Debian's docker-compose)."""
    import yaml

    path = compose_path(p)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# regaudit lab {v.name}: seeded defects in tests/lab/defects/{v.name}.yaml\n"
                    + yaml.safe_dump(compose_doc(v, p), sort_keys=False))
    os.chmod(path, 0o644)
    sh([COMPOSE, "-p", COMPOSE_PROJECT, "-f", str(path), "up", "-d", "--no-build"], timeout=180,
       env={"DOCKER_HOST": docker_host(p)})
    state["containers"] = {"compose_file": str(path), "compose_project": COMPOSE_PROJECT, "network": NETWORK,
                           "subnet": SUBNET, "volume": VOLUME}
    for name in ("registry", "nginx"):
        state["containers"][name] = inspect_facts(p, name)


def start_containers(v: Variant, p: Paths, state: dict[str, Any]) -> None:
    """Network, volume, both containers; then facts from `docker inspect` into lab.json.
    container-weak is started from a compose file, container-hardened with `docker run` lines."""
    if v.containers == "weak":
        start_with_compose(v, p, state)
        return
    docker(p, "network", "create", "--subnet", SUBNET, NETWORK)
    docker(p, "volume", "create", VOLUME)
    lines = run_lines(v, p)
    script = ["#!/bin/sh", f"# regaudit lab {v.name}: how the containers were started",
              f"export DOCKER_HOST={docker_host(p)}",
              f"docker network create --subnet {SUBNET} {NETWORK}", f"docker volume create {VOLUME}"]
    for name in ("registry", "nginx"):
        argv = lines[name]
        docker(p, *argv[1:], timeout=120)
        script.append(shlex.join(argv))
    run_sh = p.base / "containers" / "run.sh"
    run_sh.write_text("\n".join(script) + "\n")
    state["containers"] = {"run_lines": {k: shlex.join(a) for k, a in lines.items()}, "run_script": str(run_sh),
                           "network": NETWORK, "subnet": SUBNET, "volume": VOLUME}
    for name in ("registry", "nginx"):
        state["containers"][name] = inspect_facts(p, name)


def inspect_facts(p: Paths, name: str) -> dict[str, Any]:
    import json

    data = json.loads(docker(p, "inspect", name).stdout)[0]
    return {"id": data["Id"], "pid": data["State"]["Pid"], "running": data["State"]["Running"],
            "mounts": [{k: m.get(k) for k in ("Type", "Source", "Destination", "RW")} for m in data["Mounts"]],
            "privileged": data["HostConfig"]["Privileged"], "read_only": data["HostConfig"]["ReadonlyRootfs"],
            "restart": data["HostConfig"]["RestartPolicy"]["Name"], "tmpfs": data["HostConfig"].get("Tmpfs"),
            "ports": data["NetworkSettings"]["Ports"]}


def volume_path(p: Paths) -> str:
    return docker(p, "volume", "inspect", "--format", "{{.Mountpoint}}", VOLUME).stdout.strip()


def registry_host_address() -> str:
    return ADDRESSES["registry"][0]


def registry_config_text(registry_text: str, p: Paths) -> str:
    """The lab's registry config, with the storage on the container's volume path."""
    return registry_text.replace(f"rootdirectory: {p.storage}", f"rootdirectory: {STORAGE_IN_CONTAINER}")


def nginx_config_text(v: Variant) -> str:
    """nginx.conf inside the container: the guide's server block, temp paths under /var/lib/nginx
    (a --tmpfs in the hardened variant, the writable layer in the weak one), logs to stdout/stderr."""
    t = v.nginx_timeout
    return f"""\
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 256;
}}

http {{
    default_type application/octet-stream;
    access_log /dev/stdout;
    server_tokens off;
    fastcgi_temp_path {NGINX_TEMP}/fastcgi;
    uwsgi_temp_path {NGINX_TEMP}/uwsgi;
    scgi_temp_path {NGINX_TEMP}/scgi;

    upstream docker-registry {{
        server {REGISTRY_IP}:{REGISTRY_PORT};
    }}

    server {{
        listen 0.0.0.0:{NGINX_PORT};
        server_name registry.internal;

        client_max_body_size {v.nginx_body};
        client_body_temp_path {NGINX_TEMP}/body;

        proxy_buffering on;
        proxy_buffer_size 32k;
        proxy_buffers 16 64k;
        proxy_busy_buffers_size 128k;

        proxy_temp_path {NGINX_TEMP}/proxy;
        proxy_max_temp_file_size 4096m;

        proxy_read_timeout {t};
        proxy_send_timeout {t};
        proxy_connect_timeout 60s;

        location /v2/ {{
            proxy_pass http://docker-registry;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""
