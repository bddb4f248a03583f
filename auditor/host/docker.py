"""A containerised registry, read through the Docker Engine API (the unix socket).

Contract: `registry_from_inspect(inspect)` is pure: one container's `docker inspect` JSON ->
registry facts (published ports with their host IPs, mounts, the config file on the host) or
None when the container is not a registry. `list_registries(socket)` asks the engine (GET
/containers/json, then /containers/<id>/json), read-only, bounded by `timeout`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

import httpx

from auditor.host import procfs
from auditor.model import JSON

DOCKER_SOCKET = "/var/run/docker.sock"
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
        "cmdline": " ".join([str(inspect.get("Path") or ""), *[str(a) for a in inspect.get("Args") or []]]),
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
    elif pid and os.path.exists(procfs.root_path(pid, inside_path, proc)):
        facts["config"] = procfs.root_path(pid, inside_path, proc)
        facts["config_source"] = f"docker container {name}: {how} {inside_path}, in the image (via /proc/{pid}/root)"
    else:
        facts["config"] = None
        facts["config_source"] = f"docker container {name}: {inside_path} is in the image and not reachable"
    return facts


async def list_registries(socket: str = DOCKER_SOCKET, timeout: float = 5.0) -> list[dict[str, JSON]]:
    """Registry containers the engine runs (read-only API calls). Raises httpx.HTTPError."""
    transport = httpx.AsyncHTTPTransport(uds=socket)
    async with httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=timeout) as client:
        listing = await client.get("/containers/json")
        listing.raise_for_status()
        found = []
        for summary in listing.json():
            detail = await client.get(f"/containers/{summary['Id']}/json")
            detail.raise_for_status()
            facts = registry_from_inspect(detail.json())
            if facts is not None:
                found.append(facts)
        return found
