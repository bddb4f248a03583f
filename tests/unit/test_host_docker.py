"""A containerised registry from `docker inspect` JSON (tests/fixtures/docker/), and the Engine API
client against a real HTTP server on a unix socket serving that JSON."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import UnixStreamServer
from typing import Any

import pytest

from auditor.checkapi import ProbeRecord
from auditor.host import docker
from auditor.model import Status

from .helpers import FIXTURES, judge

DOCKER = FIXTURES / "docker"


def inspect(name: str) -> dict[str, Any]:
    (item,) = json.loads((DOCKER / name).read_text())
    return dict(item)


def test_published_on_every_address() -> None:
    facts = docker.registry_from_inspect(inspect("registry-published-all.json"))
    assert facts is not None
    assert facts["container"]["name"] == "registry" and facts["pid"] == 48213
    assert [(p["host_ip"], p["host_port"], p["endpoint"]) for p in facts["published_ports"]] == [
        ("0.0.0.0", 5000, "0.0.0.0:5000"), ("::", 5000, "[::]:5000")]
    assert facts["config"] == "/srv/registry/config.yml"
    assert "bind mount from /srv/registry/config.yml" in facts["config_source"]
    assert facts["env_overrides"]["REGISTRY_HTTP_SECRET"] == "<redacted>"
    assert "3b9f0c2e7d1a4f6b8e5c" not in json.dumps(facts)


def test_published_on_loopback_with_a_config_directory_mount_and_a_volume() -> None:
    facts = docker.registry_from_inspect(inspect("registry-published-loopback.json"))
    assert facts is not None
    assert [p["endpoint"] for p in facts["published_ports"]] == ["127.0.0.1:5000"]
    assert facts["config"] == "/etc/registry/config.yml"
    mounted = docker.host_path(facts["mounts"], "/data/docker/registry/v2")
    assert mounted is not None and mounted[0] == "/var/lib/docker/volumes/registry-data/_data/docker/registry/v2"
    assert facts["env_overrides"] == {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data"}


def test_other_containers_are_not_registries() -> None:
    assert docker.registry_from_inspect(inspect("nginx.json")) is None


def _evidence(container: dict[str, Any]) -> dict[str, ProbeRecord]:
    config = {"path": container["config"], "config": {"version": 0.1, "http": {"addr": ":5000"}}}
    found = {"registry": container, "registries": [], "containers": [container], "sources": []}
    return {"config.registry": ProbeRecord("config.registry", "ok", config),
            "host.discovery": ProbeRecord("host.discovery", "ok", found),
            "host.sockets": ProbeRecord("host.sockets", "ok", {"sockets": []})}


@pytest.mark.parametrize(("fixture", "status", "mention"), [
    ("registry-published-all.json", Status.FAIL, "published on 0.0.0.0:5000, [::]:5000"),
    ("registry-published-loopback.json", Status.PASS, "127.0.0.1:5000"),
])
def test_bind_loopback_judges_published_ports(fixture: str, status: Status, mention: str) -> None:
    facts = docker.registry_from_inspect(inspect(fixture))
    assert facts is not None
    (result,) = judge("registry.bind-loopback", _evidence(facts))
    assert result.status is status and mention in result.message
    assert result.subject.startswith("container ")


class _Engine(BaseHTTPRequestHandler):
    containers: dict[str, dict[str, Any]] = {}

    def do_GET(self) -> None:
        if self.path == "/containers/json":
            body: Any = [{"Id": cid, "Names": [c["Name"]]} for cid, c in self.containers.items()]
        elif self.path.startswith("/containers/") and self.path.endswith("/json"):
            body = self.containers.get(self.path.split("/")[2])
        else:
            body = None
        data = json.dumps(body).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: Any) -> None:
        pass


class _UnixHTTPServer(UnixStreamServer, HTTPServer):
    def server_bind(self) -> None:
        UnixStreamServer.server_bind(self)
        self.server_name, self.server_port = "docker", 0


def test_engine_api_over_a_unix_socket(tmp_path: Path) -> None:
    _Engine.containers = {c["Id"]: c for c in (inspect(n) for n in
                                              ("registry-published-all.json", "nginx.json"))}
    path = str(tmp_path / "docker.sock")
    server = _UnixHTTPServer(path, _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        found = asyncio.run(docker.list_containers(docker.Endpoint("unix", path, "given"), 5.0))["registries"]
    finally:
        server.shutdown()
        server.server_close()
    assert [f["container"]["name"] for f in found] == ["registry"]
    assert found[0]["published_ports"][0]["endpoint"] == "0.0.0.0:5000"


def test_a_silent_engine_does_not_sink_discovery(tmp_path: Path) -> None:
    import socket as pysocket

    from auditor.probes import host

    path = str(tmp_path / "silent.sock")
    listener = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()  # accepts, never answers
    original = host.DOCKER_BUDGET
    host.DOCKER_BUDGET = 0.5
    try:
        state = asyncio.run(host._containers([docker.Endpoint("unix", path, "DOCKER_HOST")]))
    finally:
        host.DOCKER_BUDGET = original
        listener.close()
    assert state["state"] == "error" and "no answer within 0.5s" in state["reason"]
    assert state["registries"] == []
