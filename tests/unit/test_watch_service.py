"""The watcher's HTTP intake as a real process on loopback: auth, bounds, hostile senders, metrics, status.

The watcher judges against an empty filesystem storage here (so every pushed tag is `gone`): these
tests are about intake; the verdicts through the real registry are in tests/integration/test_watch_lab.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .test_watch_events import envelope, event

TOKEN = "t0ken-for-the-watch-tests-0123456789"
MEDIA = "application/vnd.docker.distribution.events.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, tmp: Path, *extra: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "watch.sqlite"
        (tmp / "storage" / "docker" / "registry" / "v2" / "repositories").mkdir(parents=True, exist_ok=True)
        token = tmp / "token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        env = {**os.environ, "REGAUDIT_STATE_DIR": str(tmp / "state")}
        self.log = open(tmp / "watch.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "watch", "serve", "--storage-root", str(tmp / "storage"),
             "--listen", f"127.0.0.1:{self.port}", "--token-file", str(token), "--db", str(self.db),
             "--max-body", "65536", "--max-inflight", "16", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).json()["ready"]:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, (tmp / "watch.log").read_text()
            time.sleep(0.1)
        raise AssertionError("watcher did not become ready: " + (tmp / "watch.log").read_text())

    def post(self, body: bytes, token: str | None = TOKEN, media: str = MEDIA) -> httpx.Response:
        headers = {"Content-Type": media}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(f"{self.url}/events", content=body, headers=headers, timeout=10)

    def events(self) -> int:
        """Distinct events stored (read from the database, as `watch status` does)."""
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def status(self) -> dict:
        out = subprocess.run([sys.executable, "-m", "auditor", "watch", "status", "--db", str(self.db), "--format",
                              "json", "--all"], capture_output=True, text=True, check=False, timeout=120)
        return dict(json.loads(out.stdout))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("watch"))
    yield svc
    svc.stop()


def test_a_good_envelope_is_stored_once_and_acknowledged(service: Service) -> None:
    before = service.events()
    body = envelope(event(event_id="ok-1"), event(event_id="ok-2", tag="v2"))
    first = service.post(body)
    assert first.status_code == 200 and first.json() == {"received": 2, "stored": 2}
    again = service.post(body)  # the registry retries: counted once
    assert again.status_code == 200 and again.json()["stored"] == 0
    assert service.events() == before + 2
    assert service.status()["counts"]["events"] == before + 2


@pytest.mark.parametrize("token", [None, "wrong-token-of-the-same-length-00000", TOKEN + "x", TOKEN.upper()])
def test_without_the_right_header_401_and_nothing_changes(service: Service, token: str | None) -> None:
    before = service.events()
    answer = service.post(envelope(event(event_id=f"unauth-{token}")), token=token)
    assert answer.status_code == 401
    assert service.events() == before


def test_hostile_bodies_get_4xx_and_change_nothing(service: Service) -> None:
    before = service.events()
    assert service.post(b"x" * 200_000).status_code == 413
    assert service.post(b'{"events": [').status_code == 400
    assert service.post(b'{"events": [{"action": "push"}]}').status_code == 400
    assert service.post(envelope(event(event_id="media")), media="text/plain").status_code == 415
    chunked = httpx.post(f"{service.url}/events", content=iter([b"{" * 40_000, b"{" * 40_000]),
                         headers={"Content-Type": MEDIA, "Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert chunked.status_code == 413  # no Content-Length: bounded while reading
    assert service.events() == before
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_a_flood_gets_answers_or_backpressure_and_the_service_survives(service: Service) -> None:
    before = service.events()

    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120, pool=None)) as client:
            async def one(i: int) -> int:
                good = i % 3 == 0
                response = await client.post(
                    f"{service.url}/events", content=envelope(event(event_id=f"flood-{i}")) if good else b"{oops",
                    headers={"Content-Type": MEDIA, "Authorization": f"Bearer {TOKEN if i % 2 == 0 else 'no'}"})
                return response.status_code
            return await asyncio.gather(*(one(i) for i in range(600)))

    codes = asyncio.run(flood())
    assert set(codes) <= {200, 400, 401, 503}, set(codes)
    accepted = sum(1 for i, c in enumerate(codes) if c == 200)
    assert accepted >= 1
    assert all(c in (200, 503) for i, c in enumerate(codes) if i % 6 == 0)  # good token, good body
    assert all(c == 401 for i, c in enumerate(codes) if i % 2 == 1)          # wrong token: always refused
    assert service.events() == before + accepted  # exactly the acknowledged events were stored
    assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


def test_metrics_expose_counters_and_rejections(service: Service) -> None:
    text = httpx.get(f"{service.url}/metrics", timeout=5).text
    assert "regaudit_watch_events_received_total{action=\"push\"}" in text
    assert "regaudit_watch_requests_rejected_total{reason=\"unauthorised\"}" in text
    assert "regaudit_watch_last_reconciliation_timestamp_seconds" in text
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"regaudit_watch_judgement_lag_seconds", "regaudit_watch_tag_state", "regaudit_watch_alerts"} <= names


def test_kill_9_and_restart_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    acknowledged = 0
    try:
        for i in range(40):
            if svc.post(envelope(event(event_id=f"k-{i}"))).status_code == 200:
                acknowledged += 1
        svc.proc.send_signal(signal.SIGKILL)
        svc.proc.wait()
    finally:
        svc.log.close()
    again = Service(tmp_path)
    try:
        assert again.events() == acknowledged == 40
        assert again.post(envelope(event(event_id="k-0"))).json()["stored"] == 0  # a retry after the kill
    finally:
        again.stop()


@pytest.mark.parametrize("argv, message", [
    (["watch", "serve", "--storage-root", "/nonexistent-dir"], "no such file"),
    (["watch", "serve"], "nothing to watch"),
    (["watch", "status", "--db", "/nonexistent/watch.sqlite"], "no watcher database"),
    (["watch", "serve", "https://r.example", "--listen", "nope"], "HOST:PORT"),
    (["watch", "serve", "https://r.example", "--alert", "pager=http://x"], "KIND=URL"),
])
def test_bad_input_is_one_message_and_exit_2(argv: list[str], message: str, tmp_path: Path) -> None:
    env = {**os.environ, "REGAUDIT_WATCH_TOKEN": TOKEN, "REGAUDIT_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "auditor", *argv], capture_output=True, text=True, env=env,
                         check=False, timeout=60)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "REGAUDIT_WATCH_TOKEN": "short", "REGAUDIT_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "auditor", "watch", "serve", "--storage-root", str(tmp_path)],
                         capture_output=True, text=True, env=env, check=False, timeout=60)
    assert out.returncode == 2 and "at least 16" in out.stderr


def test_install_writes_a_unit_systemd_accepts_whose_command_serves(tmp_path: Path) -> None:
    import shlex
    import shutil

    storage = tmp_path / "storage"
    (storage / "docker" / "registry" / "v2" / "repositories").mkdir(parents=True)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    port = free_port()
    serve_args = (f"--storage-root {storage} --listen 127.0.0.1:{port} --token-file {token} "
                  f"--db {tmp_path / 'w.sqlite'}")
    units = tmp_path / "units"
    units.mkdir()
    out = subprocess.run([sys.executable, "-m", "auditor", "watch", "install", "lab", "--unit-dir", str(units),
                          "--serve-args", serve_args], capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    unit = units / "regaudit-watch-lab.service"
    text = unit.read_text()
    assert "Restart=always" in text and "NoNewPrivileges=yes" in text and TOKEN not in text
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                            check=False, timeout=60)
    assert verify.returncode == 0, verify.stderr
    command = next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart="))
    proc = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "REGAUDIT_STATE_DIR": str(tmp_path / "state")})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["ok"] is True
    finally:
        proc.terminate()
        proc.wait(15)
    again = subprocess.run([sys.executable, "-m", "auditor", "watch", "install", "lab", "--unit-dir", str(units)],
                           capture_output=True, text=True, check=False, timeout=60)
    assert again.returncode == 2 and "not overwriting" in again.stderr


def test_with_a_certificate_it_serves_tls_only(tmp_path: Path) -> None:
    import datetime as dt
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key_pem.chmod(0o600)
    port = free_port()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    (tmp_path / "storage" / "docker" / "registry" / "v2" / "repositories").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "watch", "serve", "--storage-root",
                             str(tmp_path / "storage"), "--listen", f"127.0.0.1:{port}", "--token-file", str(token),
                             "--db", str(tmp_path / "w.sqlite"), "--tls-cert", str(cert_pem), "--tls-key", str(key_pem)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "REGAUDIT_STATE_DIR": str(tmp_path / "state")})
    try:
        context = ssl.create_default_context(cafile=str(cert_pem))
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.post(f"https://127.0.0.1:{port}/events", content=envelope(event(event_id="tls-1")),
                                    headers={"Content-Type": MEDIA, "Authorization": f"Bearer {TOKEN}"},
                                    verify=context, timeout=5)
            except httpx.ConnectError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200 and answer.json()["stored"] == 1
        with pytest.raises(httpx.HTTPError):  # no plaintext on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(15)
