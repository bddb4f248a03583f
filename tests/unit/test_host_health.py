"""registry.debug-health against a real HTTP server on loopback answering /debug/health, gathered
by the engine's gatherer and judged by registry.health-check; addresses not on this host are
never contacted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from auditor.gather import Gatherer
from auditor.model import Status
from auditor.plugins import load_probes
from auditor.probes.registry_live import health_url
from auditor.target import Target

from .helpers import judge

CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: 127.0.0.1:5000
  debug:
    addr: {debug}
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


class _Health(BaseHTTPRequestHandler):
    status = 200
    body = b"{}"

    def do_GET(self) -> None:
        code, body = (self.status, self.body) if self.path == "/debug/health" else (404, b"not found")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def gather(config: Path) -> dict[str, Any]:
    target = Target(inside=True, paths={"registry_config": str(config)})
    probes = {k: v for k, v in load_probes().items() if k != "host.discovery"}  # this machine's own registries
    gatherer = Gatherer(probes, target, None, 30.0)
    return asyncio.run(gatherer.gather(["config.registry", "registry.debug-health"]))


@pytest.mark.parametrize(("status", "body", "verdict"), [
    (200, b"{}", Status.PASS),
    (503, b'{"storagedriver_filesystem":"filesystem: unavailable"}', Status.FAIL),
])
def test_health_endpoint_verdict(server: ThreadingHTTPServer, tmp_path: Path, status: int, body: bytes,
                                 verdict: Status) -> None:
    _Health.status, _Health.body = status, body
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.format(debug=f"127.0.0.1:{server.server_address[1]}"))
    records = gather(config)
    assert records["registry.debug-health"].state == "ok", records["registry.debug-health"]
    assert records["registry.debug-health"].value["status"] == status
    (result,) = judge("registry.health-check", records)
    assert result.status is verdict, result
    if verdict is Status.FAIL:
        assert "answers 503" in result.message and "unavailable" in result.message


def test_unreachable_endpoint_keeps_the_config_verdict(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]  # closed once the block ends: nothing listens there
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.format(debug=f"127.0.0.1:{port}"))
    (result,) = judge("registry.health-check", gather(config))
    assert result.status is Status.PASS and "not reachable" in result.message


def test_only_this_hosts_addresses_are_contacted() -> None:
    assert health_url("10.9.9.9:5001", {"10.0.0.10"})[0] is None
    assert health_url("10.0.0.10:5001", {"10.0.0.10"})[0] == "http://10.0.0.10:5001/debug/health"
    assert health_url(":5001", set())[0] == "http://127.0.0.1:5001/debug/health"
    assert health_url("[::1]:5001", set())[0] == "http://[::1]:5001/debug/health"
    assert health_url("localhost:5001", set())[0] == "http://127.0.0.1:5001/debug/health"
