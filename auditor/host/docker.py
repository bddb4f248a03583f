"""Containerised registries and proxies, read through the Docker Engine API.

Contract:
- `engine_endpoints(env)` names where the engine answers: DOCKER_HOST (unix:// or tcp://) when
  set, else the standard socket /var/run/docker.sock, then podman's Docker-compatible sockets.
- `registry_from_inspect(inspect)` and `nginx_from_inspect(inspect)` are pure: one container's
  `docker inspect` JSON -> facts (published ports with their host IPs, mounts, the config file on
  the host read through the container's mounts, argv lists) or None when it is not one.
- `runtime_facts(inspect)` is pure: how a container runs (privileged, capabilities, read-only root,
  restart policy, tmpfs mounts, mounts with their modes) for the container.* checks.
- `list_containers(endpoint)` asks the engine (GET /containers/json, /containers/<id>/json),
  read-only, bounded by `timeout`.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor import bounded
from auditor.host import procfs
from auditor.host.localhttp import LocalHTTPError, get_unix, get_url
from auditor.model import JSON

DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock",)
NGINX_DEFAULT_CONFIG = "/etc/nginx/nginx.conf"
MAX_API_BODY = 32 * 1024 * 1024
CONTAINER_DEFAULT_CONFIG = "/etc/docker/registry/config.yml"
CONFIG_SUFFIXES = (".yml", ".yaml", ".json")


def _image_name(inspect: Mapping[str, Any]) -> str:
    return str((inspect.get("Config") or {}).get("Image") or "")


def is_registry_container(inspect: Mapping[str, Any]) -> bool:
    """The image is registry / distribution (any host or tag), or the command is `registry serve`."""
    image = _image_name(inspect).split("@")[0]
    last = posixpath.basename(image.rsplit(":", 1)[0] if ":" in posixpath.basename(image) else image)
    argv = [str(inspect.get("Path") or ""), *[str(a) for a in inspect.get("Args") or []]]
    serve = len(argv) > 1 and posixpath.basename(argv[0]) in ("registry", "docker-registry") and argv[1] == "serve"
    return last in ("registry", "distribution", "docker-registry") or serve


def container_config_path(inspect: Mapping[str, Any]) -> tuple[str, str]:
    """(path inside the container, how it was found): the image's entrypoint passes a *.yml/
    *.yaml/*.json argument to `registry serve`; else REGISTRY_CONFIGURATION_PATH; else the default."""
    args = [str(a) for a in inspect.get("Args") or []]
    for arg in args:
        if arg.endswith(CONFIG_SUFFIXES):
            return arg, "container command argument"
    env = env_dict(inspect)
    if env.get("REGISTRY_CONFIGURATION_PATH"):
        return env["REGISTRY_CONFIGURATION_PATH"], "REGISTRY_CONFIGURATION_PATH in the container's environment"
    return CONTAINER_DEFAULT_CONFIG, "the registry image's default config path"


def env_dict(inspect: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for item in (inspect.get("Config") or {}).get("Env") or []:
        name, _, value = str(item).partition("=")
        out[name] = value
    return out


def mounts(inspect: Mapping[str, Any]) -> list[dict[str, JSON]]:
    return [
        {
            "type": m.get("Type"),
            "source": m.get("Source"),
            "destination": m.get("Destination"),
            "rw": bool(m.get("RW", True)),
            "name": m.get("Name"),
        }
        for m in inspect.get("Mounts") or []
    ]


def host_path(mount_list: list[dict[str, JSON]], container_path: str) -> tuple[str, dict[str, JSON]] | None:
    """The host path behind `container_path` through the deepest mount covering it, or None."""
    best: dict[str, JSON] | None = None
    for mount in mount_list:
        dest = str(mount.get("destination") or "")
        if not dest or not mount.get("source"):
            continue
        covers = container_path == dest or container_path.startswith(dest.rstrip("/") + "/")
        if covers and (best is None or len(dest) > len(str(best["destination"]))):
            best = mount
    if best is None:
        return None
    rest = posixpath.relpath(container_path, str(best["destination"]))
    source = str(best["source"])
    return (source if rest == "." else posixpath.join(source, rest)), best


def published_ports(inspect: Mapping[str, Any]) -> list[dict[str, JSON]]:
    """Every published port: container port/proto, host IP ("" = every address) and host port."""
    ports = ((inspect.get("NetworkSettings") or {}).get("Ports")) or {}
    out = []
    for spec, bindings in sorted(ports.items()):
        port, _, proto = spec.partition("/")
        for binding in bindings or []:
            host_ip = str(binding.get("HostIp") or "")
            out.append(
                {
                    "container_port": int(port),
                    "proto": proto or "tcp",
                    "host_ip": host_ip,
                    "host_port": int(binding.get("HostPort") or 0),
                    "endpoint": f"[{host_ip}]:{binding.get('HostPort')}" if ":" in host_ip
                    else f"{host_ip or '0.0.0.0'}:{binding.get('HostPort')}",
                }
            )
    return out


def registry_from_inspect(inspect: Mapping[str, Any], proc: str = procfs.PROC) -> dict[str, JSON] | None:
    """Registry facts of one container, or None when it is not a registry."""
    if not is_registry_container(inspect):
        return None
    state = inspect.get("State") or {}
    host_config = inspect.get("HostConfig") or {}
    inside_path, how = container_config_path(inspect)
    mount_list = mounts(inspect)
    mapped = host_path(mount_list, inside_path)
    pid = int(state.get("Pid") or 0)
    name = str(inspect.get("Name") or "").lstrip("/")
    facts: dict[str, JSON] = {
        "container": {"id": inspect.get("Id"), "name": name, "image": _image_name(inspect),
                      "network_mode": host_config.get("NetworkMode"), "running": bool(state.get("Running"))},
        "pid": pid or None,
        "exe": None,
        "argv": argv_of(inspect),
        "cmdline": shlex.join(argv_of(inspect)),
        "config_in_container": inside_path,
        "published_ports": published_ports(inspect),
        "mounts": mount_list,
        "env_overrides": procfs.mask_env({k: v for k, v in sorted(env_dict(inspect).items())
                                          if k.startswith("REGISTRY_")}),
    }
    if mapped is not None:
        facts["config"] = mapped[0]
        facts["config_source"] = (f"docker container {name}: {how} {inside_path}, "
                                  f"{mapped[1]['type']} mount from {mapped[1]['source']}")
    else:
        facts["config"], facts["config_source"] = _in_image(name, pid, inside_path, how, proc)
    return facts


def _in_image(name: str, pid: int, inside_path: str, how: str, proc: str) -> tuple[str | None, str]:
    if pid and os.path.exists(procfs.root_path(pid, inside_path, proc)):
        return (procfs.root_path(pid, inside_path, proc),
                f"docker container {name}: {how} {inside_path}, in the image (via /proc/{pid}/root)")
    return None, f"docker container {name}: {inside_path} is in the image and not reachable"


def argv_of(inspect: Mapping[str, Any]) -> list[str]:
    """The container's command as the engine runs it (entrypoint + cmd), one element per argument."""
    return [str(inspect.get("Path") or ""), *[str(a) for a in inspect.get("Args") or []]]


def is_nginx_container(inspect: Mapping[str, Any]) -> bool:
    """The image is nginx (any host or tag) or the command runs the nginx binary."""
    image = _image_name(inspect).split("@")[0]
    last = posixpath.basename(image.rsplit(":", 1)[0] if ":" in posixpath.basename(image) else image)
    argv = argv_of(inspect)
    runs = any(posixpath.basename(a) == "nginx" for a in argv[:1]) or (
        posixpath.basename(argv[0]) in ("sh", "bash", "docker-entrypoint.sh", "/docker-entrypoint.sh")
        and "nginx" in [posixpath.basename(a) for a in argv[1:3]])
    return last in ("nginx", "nginx-unprivileged") or last.startswith("nginx") or runs


def _nginx_option(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def nginx_from_inspect(inspect: Mapping[str, Any], proc: str = procfs.PROC) -> dict[str, JSON] | None:
    """nginx facts of one container (config through its mounts), or None when it is not nginx."""
    if not is_nginx_container(inspect):
        return None
    argv = argv_of(inspect)
    state = inspect.get("State") or {}
    pid = int(state.get("Pid") or 0)
    name = str(inspect.get("Name") or "").lstrip("/")
    prefix = _nginx_option(argv[1:], "-p")
    conf = _nginx_option(argv[1:], "-c")
    inside = posixpath.normpath(posixpath.join(prefix or "/etc/nginx", conf)) if conf else NGINX_DEFAULT_CONFIG
    how = "the -c argument of its command" if conf else "nginx's default config path"
    mount_list = mounts(inspect)
    mapped = host_path(mount_list, inside)
    facts: dict[str, JSON] = {
        "container": {"id": inspect.get("Id"), "name": name, "image": _image_name(inspect),
                      "running": bool(state.get("Running"))},
        "pid": pid or None, "exe": None, "argv": argv, "cmdline": shlex.join(argv),
        "config_in_container": inside, "global_directives": _nginx_option(argv[1:], "-g"),
        "prefix": prefix or "/usr/share/nginx", "published_ports": published_ports(inspect), "mounts": mount_list,
        "tmpfs": tmpfs_mounts(inspect),
    }
    if mapped is not None:
        facts["config"] = mapped[0]
        facts["config_source"] = (f"docker container {name}: {how} {inside}, "
                                  f"{mapped[1]['type']} mount from {mapped[1]['source']}")
    else:
        facts["config"], facts["config_source"] = _in_image(name, pid, inside, how, proc)
    return facts


def tmpfs_mounts(inspect: Mapping[str, Any]) -> list[dict[str, JSON]]:
    """tmpfs mounts of a container: HostConfig.Tmpfs (`--tmpfs`) and Mounts of type tmpfs (`--mount`)."""
    host_config = inspect.get("HostConfig") or {}
    out: list[dict[str, JSON]] = []
    for dest, options in sorted((host_config.get("Tmpfs") or {}).items()):
        out.append({"destination": dest, "options": str(options or ""), "how": "--tmpfs"})
    for m in host_config.get("Mounts") or []:
        if m.get("Type") == "tmpfs":
            opts = m.get("TmpfsOptions") or {}
            text = ",".join(filter(None, [f"size={opts['SizeBytes']}" if opts.get("SizeBytes") else "",
                                          f"mode={opts['Mode']:o}" if opts.get("Mode") else ""]))
            out.append({"destination": m.get("Target"), "options": text, "how": "--mount type=tmpfs"})
    return out


def runtime_facts(inspect: Mapping[str, Any]) -> dict[str, JSON]:
    """How one container runs, for the container.* checks (pure)."""
    host_config = inspect.get("HostConfig") or {}
    config = inspect.get("Config") or {}
    restart = host_config.get("RestartPolicy") or {}
    name = str(inspect.get("Name") or "").lstrip("/")
    role = "registry" if is_registry_container(inspect) else "nginx" if is_nginx_container(inspect) else None
    config_inside = (container_config_path(inspect)[0] if role == "registry"
                     else str(nginx_from_inspect(inspect, "/nonexistent")["config_in_container"])  # type: ignore[index]
                     if role == "nginx" else None)
    mapped = host_path(mounts(inspect), config_inside) if config_inside else None
    config_mount = mapped[1] if mapped else None
    return {
        "id": inspect.get("Id"), "name": name, "image": _image_name(inspect), "role": role,
        "config_in_container": config_inside, "config_mount": config_mount,
        "pid": int((inspect.get("State") or {}).get("Pid") or 0) or None,
        "running": bool((inspect.get("State") or {}).get("Running")),
        "argv": argv_of(inspect),
        "cmd": [str(a) for a in config.get("Cmd") or []],
        "privileged": bool(host_config.get("Privileged")),
        "cap_add": sorted(str(c) for c in host_config.get("CapAdd") or []),
        "cap_drop": sorted(str(c) for c in host_config.get("CapDrop") or []),
        "read_only_rootfs": bool(host_config.get("ReadonlyRootfs")),
        "restart_policy": str(restart.get("Name") or "no"),
        "restart_max_retries": int(restart.get("MaximumRetryCount") or 0),
        "security_opt": [str(o) for o in host_config.get("SecurityOpt") or []],
        "user": str(config.get("User") or ""),
        "network_mode": host_config.get("NetworkMode"),
        "pid_mode": host_config.get("PidMode") or "",
        "published_ports": published_ports(inspect),
        "mounts": mounts(inspect),
        "tmpfs": tmpfs_mounts(inspect),
        "compose": {k: v for k, v in (config.get("Labels") or {}).items()
                    if k in ("com.docker.compose.project", "com.docker.compose.service",
                             "com.docker.compose.project.config_files", "com.docker.compose.project.working_dir")},
    }


@dataclass(frozen=True)
class Endpoint:
    """Where an engine answers: a unix socket path, or a tcp://host:port URL (no TLS)."""

    kind: str  # "unix" | "tcp"
    address: str
    source: str

    @property
    def label(self) -> str:
        return f"{self.kind}://{self.address}" if self.kind == "tcp" else self.address

    def exists(self) -> bool:
        return self.kind == "tcp" or os.path.exists(self.address)


def engine_endpoints(env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """DOCKER_HOST when set (the only endpoint then, as the docker client does), else the standard
    socket and podman's Docker-compatible sockets (the ones that exist, in that order)."""
    env = os.environ if env is None else env
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        if host.startswith("unix://"):
            return [Endpoint("unix", host[len("unix://"):], "DOCKER_HOST")]
        if host.startswith("tcp://"):
            return [Endpoint("tcp", host[len("tcp://"):].rstrip("/"), "DOCKER_HOST")]
        raise ValueError(f"DOCKER_HOST={host!r}: only unix:// and tcp:// endpoints are supported")
    out = [Endpoint("unix", DOCKER_SOCKET, "the standard socket")]
    runtime = env.get("XDG_RUNTIME_DIR")
    podman = [*PODMAN_SOCKETS, *([f"{runtime}/podman/podman.sock"] if runtime else [])]
    out += [Endpoint("unix", path, "podman's Docker-compatible socket") for path in podman]
    return out


async def _api(endpoint: Endpoint, path: str, timeout: float) -> Any:
    """One read-only Engine API GET (stdlib HTTP, so the inside gathering needs no HTTP package)."""
    if endpoint.kind == "unix":
        response = await get_unix(endpoint.address, path, timeout, MAX_API_BODY)
    else:
        response = await get_url(f"http://{endpoint.address}{path}", timeout, MAX_API_BODY, truncate=False)
    if response.status != 200:
        raise LocalHTTPError(f"Engine API {path}: HTTP {response.status}")
    try:
        return bounded.load_json(response.body, f"Engine API {path}")
    except bounded.InputError as exc:
        raise LocalHTTPError(str(exc)) from None


async def list_containers(endpoint: Endpoint, timeout: float = 5.0) -> dict[str, list[dict[str, JSON]]]:
    """Running containers: {"registries": [...], "nginx": [...], "runtime": [...]} (read-only API
    calls; runtime facts for every registry and nginx container). Raises OSError or ValueError."""
    out: dict[str, list[dict[str, JSON]]] = {"registries": [], "nginx": [], "runtime": []}
    for summary in await _api(endpoint, "/containers/json", timeout):
        inspect = await _api(endpoint, f"/containers/{summary['Id']}/json", timeout)
        registry = registry_from_inspect(inspect)
        nginx = None if registry is not None else nginx_from_inspect(inspect)
        if registry is not None:
            out["registries"].append(registry)
        if nginx is not None:
            out["nginx"].append(nginx)
        if registry is not None or nginx is not None:
            out["runtime"].append(runtime_facts(inspect))
    return out
