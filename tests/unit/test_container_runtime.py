"""Containers from real `docker inspect` output of the lab's Docker Engine (tests/fixtures/docker/lab-*):
engine endpoints (DOCKER_HOST), registry and nginx facts through their mounts, runtime facts, the
container.runtime check, and a container's --tmpfs judged as persistent."""

from __future__ import annotations

import json
import posixpath
from typing import Any

import pytest
from auditor.checks.tmpfs import effective_tmpfs_flags

from auditor.host import docker
from auditor.model import Status

from .helpers import FIXTURES, judge, records

DOCKER = FIXTURES / "docker"


def lab(name: str) -> dict[str, Any]:
    return dict(json.loads((DOCKER / f"lab-{name}.json").read_text()))


def test_docker_host_is_the_only_endpoint_when_set() -> None:
    (unix,) = docker.engine_endpoints({"DOCKER_HOST": "unix:///srv/engine/docker.sock"})
    assert (unix.kind, unix.address, unix.source) == ("unix", "/srv/engine/docker.sock", "DOCKER_HOST")
    (tcp,) = docker.engine_endpoints({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert (tcp.kind, tcp.address, tcp.label) == ("tcp", "127.0.0.1:2375", "tcp://127.0.0.1:2375")
    with pytest.raises(ValueError, match="ssh://"):
        docker.engine_endpoints({"DOCKER_HOST": "ssh://me@host"})


def test_without_docker_host_the_standard_then_podman_sockets() -> None:
    found = docker.engine_endpoints({"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert [e.address for e in found] == ["/var/run/docker.sock", "/run/podman/podman.sock",
                                         "/run/user/1000/podman/podman.sock"]


def test_hardened_registry_container_config_read_through_its_read_only_bind_mount() -> None:
    facts = docker.registry_from_inspect(lab("hardened-registry"), proc="/nonexistent")
    assert facts is not None
    assert str(facts["config"]).endswith("/containers/registry/config.yml")
    assert "bind mount from" in str(facts["config_source"])
    assert facts["argv"] == ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]
    assert [p["endpoint"] for p in facts["published_ports"]] == ["127.0.0.1:5000"]  # type: ignore[index,union-attr]


def test_nginx_container_config_tmpfs_and_argv() -> None:
    inspect = lab("hardened-nginx")
    assert docker.registry_from_inspect(inspect) is None
    facts = docker.nginx_from_inspect(inspect, proc="/nonexistent")
    assert facts is not None
    assert facts["argv"] == ["nginx", "-g", "daemon off;"] and facts["global_directives"] == "daemon off;"
    assert posixpath.basename(str(facts["config"])) == "nginx.conf" and facts["config_in_container"] == \
        "/etc/nginx/nginx.conf"
    tmpfs = {t["destination"]: t["options"] for t in facts["tmpfs"]}  # type: ignore[union-attr,index]
    assert tmpfs["/var/lib/nginx"] == "rw,noexec,nosuid,size=512M"
    assert docker.nginx_from_inspect(lab("hardened-registry")) is None


def test_runtime_facts_of_hardened_and_weak() -> None:
    good = docker.runtime_facts(lab("hardened-registry"))
    assert good["role"] == "registry" and not good["privileged"] and good["cap_add"] == []
    assert good["read_only_rootfs"] and good["restart_policy"] == "unless-stopped"
    assert good["config_mount"]["rw"] is False  # type: ignore[index]
    bad = docker.runtime_facts(lab("weak-registry"))
    assert bad["cap_add"] == ["NET_ADMIN", "SYS_ADMIN"] and bad["restart_policy"] == "no"
    assert bad["config_mount"]["rw"] is True and not bad["read_only_rootfs"]  # type: ignore[index]


def _discovery(*names: str, privileged: bool = False) -> dict[str, Any]:
    runtime = [docker.runtime_facts(lab(n)) for n in names]
    if privileged:
        runtime[0]["privileged"] = True
    return {"container_runtime": runtime, "docker": {"socket": "/x.sock", "state": "ok"}}


def test_container_runtime_passes_hardened_and_names_every_weak_defect() -> None:
    results = judge("container.runtime", records(host__discovery=_discovery("hardened-registry", "hardened-nginx")))
    assert [r.status for r in results] == [Status.PASS, Status.PASS]
    weak = {r.subject: r for r in judge("container.runtime",
                                        records(host__discovery=_discovery("weak-registry", "weak-nginx")))}
    registry = weak["container registry (registry)"]
    assert registry.status == Status.FAIL
    for words in ("adds capabilities NET_ADMIN, SYS_ADMIN", "read-write", "no --read-only", "restart policy no"):
        assert words in registry.message
    nginx = weak["container nginx (nginx)"]
    assert nginx.status == Status.FAIL and nginx.message == "its root filesystem is writable (no --read-only)"


def test_privileged_fails() -> None:
    (result,) = judge("container.runtime", records(host__discovery=_discovery("hardened-registry", privileged=True)))
    assert result.status == Status.FAIL and "--privileged" in result.message


def test_no_engine_means_skipped_with_the_reason() -> None:
    (result,) = judge("container.runtime", records(host__discovery={
        "container_runtime": [], "docker": {"socket": "/var/run/docker.sock", "state": "absent",
                                            "reason": "no Docker Engine API socket"}}))
    assert result.status == Status.SKIP and "absent" in result.message


def test_engine_tmpfs_defaults_and_overrides() -> None:
    assert effective_tmpfs_flags("rw,noexec,nosuid,size=512M", "--tmpfs") == {"noexec", "nosuid", "nodev"}
    assert effective_tmpfs_flags("rw,exec,size=1g", "--tmpfs") == {"nosuid", "nodev"}
    assert effective_tmpfs_flags("size=1g", "--mount type=tmpfs") == set()


def test_container_tmpfs_is_persistent_without_fstab() -> None:
    mount = {"mountpoint": "/var/lib/nginx", "fstype": "tmpfs", "flags": ["nodev", "noexec", "nosuid"],
             "size_option": "512M", "size_option_bytes": 536870912, "size_bytes": 536870912}
    paths = [{"directive": d, "path": f"/var/lib/nginx/{p}", "exists": True, "mount": mount, "fstab": []}
             for d, p in (("proxy_temp_path", "proxy"), ("client_body_temp_path", "body"))]
    facts = {"paths": paths, "fstab_path": "/etc/fstab", "fstab_readable": True, "view": "nginx pid 1",
             "container": {"name": "nginx", "tmpfs": [{"destination": "/var/lib/nginx",
                                                      "options": "rw,noexec,nosuid,size=512M", "how": "--tmpfs"}]}}
    (result,) = judge("tmpfs.persistent", records(host__tmpfs=facts))
    assert result.status == Status.PASS and "container nginx declares --tmpfs /var/lib/nginx" in result.message
    facts["container"]["tmpfs"][0]["options"] = "rw,exec,size=512M"  # type: ignore[index]
    (result,) = judge("tmpfs.persistent", records(host__tmpfs=facts))
    assert result.status == Status.FAIL and "noexec" in result.message


def test_debug_listener_of_a_registry_container_is_read_in_its_namespace() -> None:
    config = {"config": {"version": 0.1, "http": {"addr": ":5000", "debug": {"addr": "127.0.0.1:5001"}}},
              "path": "/srv/config.yml", "source": "docker container registry"}
    runtime = docker.runtime_facts(lab("hardened-registry"))

    def debug(listening: list[dict[str, Any]]) -> Any:
        discovery = {"registry": {"container": {"name": "registry"}}, "registries": [], "containers": [],
                     "container_runtime": [{**runtime, "listening": listening}]}
        (result,) = judge("registry.debug-loopback", records(config__registry=config, host__discovery=discovery,
                                                             host__sockets={"sockets": []}))
        return result

    good = debug([{"endpoint": "[::]:5000", "port": 5000, "loopback": False},
                  {"endpoint": "127.0.0.1:5001", "port": 5001, "loopback": True}])
    assert good.status == Status.PASS and "127.0.0.1:5001 in container registry" in good.message
    bad = debug([{"endpoint": "0.0.0.0:5001", "port": 5001, "loopback": False}])
    assert bad.status == Status.FAIL and "0.0.0.0:5001 (container registry)" in bad.message
