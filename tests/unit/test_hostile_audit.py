"""The outside HTTP probes against hostile servers on real loopback sockets, through the real CLI.

Every run must end within its deadline (plus process start-up), with `error` results and a clear
reason, exit 1 (or 3 when nothing at all was gathered), no traceback, no pass for a check that
talked to the hostile server, and never the password in any output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile.run import AuditRun, audit
from hostile.servers import HostileServer, make_cert

from auditor.model import Status

PASSWORD = "Hostile-Test-Pa55word-7c1e"
CREDS = {"REGAUDIT_USERNAME": "auditor", "REGAUDIT_PASSWORD": PASSWORD}
SLACK = 6.0  # process start-up and report writing on a loaded 2-core CI machine
HTTP_CHECKS = ("auth.anonymous-denied", "http.nosniff")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def cosign_pub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path_factory.mktemp("cosign") / "cosign.pub"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


@pytest.fixture
def recorder() -> Iterator[HostileServer]:
    with HostileServer("record") as server:
        yield server


def _sane(run: AuditRun, deadline: float) -> None:
    assert not run.killed, f"audit hung: {run.stderr[-2000:]}"
    assert run.seconds < deadline + SLACK, f"took {run.seconds:.1f}s for a {deadline}s deadline"
    assert run.rc in (1, 3), f"exit {run.rc}: {run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr + run.stdout
    for text in (run.stdout, run.stderr, run.report_text, run.evidence_text):
        assert PASSWORD not in text
    assert run.report_text, "no JSON report written"


def _errors_with(run: AuditRun, check_id: str, *fragments: str) -> None:
    assert run.status(check_id) is Status.ERROR, run.results(check_id)
    messages = " | ".join(r["message"] for r in run.results(check_id) if r["status"] == "error")
    for fragment in fragments:
        assert fragment in messages, messages


def test_redirect_to_another_host_carries_no_credentials(tmp_path: Path, recorder: HostileServer) -> None:
    with HostileServer("redirect-offhost", redirect_to=recorder.url) as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS)
    _sane(run, 20)
    _errors_with(run, "auth.anonymous-denied", "redirect to another origin")
    _errors_with(run, "http.nosniff", "needs credentials that work", "302")
    assert recorder.requests == [], "a redirect to another origin was followed"
    assert all("authorization" not in r["headers"] for r in server.requests)


def test_credentials_go_to_the_target_only_never_after_an_offhost_redirect(
    tmp_path: Path, recorder: HostileServer
) -> None:
    with HostileServer("basic-then-offhost", redirect_to=recorder.url) as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS)
    _sane(run, 20)
    assert any("authorization" in r["headers"] for r in server.requests), "credentials never used at all"
    assert recorder.requests == []
    pulls = [r for r in run.results("auth.anonymous-denied") if "/manifests/" in r["subject"]]
    assert pulls and pulls[0]["status"] == "error"
    assert "catalog walk" in pulls[0]["message"] and "302" in pulls[0]["message"]
    catalog = [r for r in run.results("http.nosniff") if "_catalog" in r["subject"]]
    assert catalog and catalog[0]["status"] == "error"


def test_redirect_loop(tmp_path: Path) -> None:
    with HostileServer("redirect-loop") as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS)
    _sane(run, 20)
    _errors_with(run, "auth.anonymous-denied", "redirect loop")
    _errors_with(run, "http.nosniff")


def test_ten_megabytes_of_garbage(tmp_path: Path) -> None:
    with HostileServer("garbage") as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20")
    _sane(run, 20)
    for check_id in (*HTTP_CHECKS, "auth.challenge-over-tls"):
        _errors_with(run, check_id)
    assert "RemoteProtocolError" in run.report_text or "ReadError" in run.report_text


def test_huge_body_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    with HostileServer("big-body") as server:
        run = audit(server.url, tmp_path, "--select", "auth.anonymous-denied", "--deadline", "20")
    _sane(run, 20)
    # An anonymous 200 is an honest failure, not an error: but the body was cut at the bound.
    assert run.status("auth.anonymous-denied") is Status.FAIL
    assert '"body_truncated": true' in run.evidence_text


def test_slowloris_ends_within_the_deadline(tmp_path: Path) -> None:
    with HostileServer("slowloris") as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "6", env=CREDS)
    _sane(run, 6)
    for check_id in HTTP_CHECKS:
        _errors_with(run, check_id)
    assert "no complete answer within" in run.report_text or "deadline" in run.report_text


def test_connection_reset(tmp_path: Path) -> None:
    with HostileServer("reset") as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS)
    _sane(run, 20)
    for check_id in (*HTTP_CHECKS, "auth.challenge-over-tls"):
        _errors_with(run, check_id)


def test_nothing_gathered_exits_3(tmp_path: Path) -> None:
    with HostileServer("reset") as server:
        run = audit(server.url, tmp_path, "--select", "auth.anonymous-denied", "--deadline", "20")
    _sane(run, 20)
    assert run.rc == 3
    _errors_with(run, "auth.anonymous-denied", "no anonymous request got an answer")


def test_registry_port_that_answers_garbage_is_reachable_not_a_registry(tmp_path: Path) -> None:
    with HostileServer("garbage") as server:
        run = audit(server.url, tmp_path, "--select", "net", "--registry-port", str(server.port),
                    "--deadline", "20")
    _sane(run, 20)
    assert run.status("net.registry-port-exposed") is Status.FAIL
    assert "no usable HTTP answer" in run.results("net.registry-port-exposed")[0]["message"]


def test_tls_junk(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    with HostileServer("tls-junk") as server:
        url = server.url.replace("http://", "https://")
        run = audit(url, tmp_path, "--select", "auth,http", "--ca-bundle", str(cert[0]), "--deadline", "20",
                    env=CREDS)
    _sane(run, 20)
    for check_id in HTTP_CHECKS:
        _errors_with(run, check_id)
    assert "SSL" in run.report_text or "ConnectError" in run.report_text


@pytest.mark.parametrize("behaviour", ["slowloris", "redirect-offhost", "garbage", "reset"])
def test_over_tls(tmp_path: Path, cert: tuple[Path, Path], recorder: HostileServer, behaviour: str) -> None:
    with HostileServer(behaviour, tls=cert, redirect_to=recorder.url) as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--ca-bundle", str(cert[0]),
                    "--deadline", "8", env=CREDS)
    _sane(run, 8)
    for check_id in HTTP_CHECKS:
        _errors_with(run, check_id)
    assert recorder.requests == []
    assert server.requests or behaviour == "reset", "the TLS server was never reached (certificate problem?)"


def test_untrusted_certificate_gets_no_credentials(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    with HostileServer("basic-then-offhost", tls=cert) as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS)
    _sane(run, 20)
    assert server.requests == [], "a request went through a certificate that does not verify"
    _errors_with(run, "auth.anonymous-denied", "CERTIFICATE_VERIFY_FAILED")


def test_debug_logs_never_hold_the_password(tmp_path: Path, recorder: HostileServer) -> None:
    with HostileServer("basic-then-offhost", redirect_to=recorder.url) as server:
        run = audit(server.url, tmp_path, "--select", "auth,http", "--deadline", "20", env=CREDS, debug=True)
    _sane(run, 20)
    assert "send_request_headers" in run.stderr, "no debug log of the HTTP traffic was produced"
    assert any("authorization" in r["headers"] for r in server.requests)


@pytest.mark.parametrize("behaviour,deadline,fragment", [
    ("garbage", 20, "malformed HTTP answer"),
    ("reset", 20, "/v2/_catalog"),
    ("slowloris", 8, ""),
    ("redirect-loop", 20, "HTTP 302"),
])
def test_content_walk_against_a_hostile_server_is_error_within_the_deadline(
    tmp_path: Path, cosign_pub: Path, behaviour: str, deadline: int, fragment: str
) -> None:
    """The walker's own HTTP client (auditor.h11pool) on real sockets: no pass, one clear reason."""
    with HostileServer(behaviour) as server:
        run = audit(server.url, tmp_path, "--select", "signatures", "--cosign-key", str(cosign_pub),
                    "--deadline", str(deadline), env=CREDS)
    _sane(run, deadline)
    for check_id in ("signatures.present", "signatures.valid"):
        _errors_with(run, check_id, fragment)
