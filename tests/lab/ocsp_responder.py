"""The lab's OCSP responder (RFC 6960 over HTTP POST and GET), which Apache staples from.

`python3 -m lab.ocsp_responder PKI_DIR HOST PORT`: answers for the server certificates in PKI_DIR
(server-rsa.pem, server-ecdsa.pem: `good`; any other serial: `unknown`), signed by the lab CA
(ca.pem, ca.key), thisUpdate now, nextUpdate in one hour. Runs in the registry namespace on
loopback, like the rest of the lab's internal services. (openssl ocsp's responder spins on a
connection that closes without a request, which the lab's readiness probe does.)
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

MAX_REQUEST = 16384


def _load(pki: Path) -> tuple[x509.Certificate, object, dict[int, x509.Certificate]]:
    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    certs = {}
    for name in ("server-rsa.pem", "server-ecdsa.pem"):
        cert = x509.load_pem_x509_certificate((pki / name).read_bytes())
        certs[cert.serial_number] = cert
    return ca, key, certs


def answer(request_der: bytes, ca: x509.Certificate, key: object, certs: dict[int, x509.Certificate]) -> bytes:
    """The DER OCSPResponse for one DER OCSPRequest."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
            serialization.Encoding.DER)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = certs.get(request.serial_number)
    status = ocsp.OCSPCertStatus.GOOD if cert is not None else ocsp.OCSPCertStatus.UNKNOWN
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert if cert is not None else ca, issuer=ca, algorithm=request.hash_algorithm, cert_status=status,
        this_update=now, next_update=now + dt.timedelta(hours=1), revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
    if cert is None:  # answer about the serial that was asked, not the CA's
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number, algorithm=request.hash_algorithm, cert_status=status,
            this_update=now, next_update=now + dt.timedelta(hours=1), revocation_time=None, revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
    # the signer's certificate travels in the response: nginx's OCSP_basic_verify looks for it there
    builder = builder.certificates([ca])
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def serve(pki: Path, host: str, port: int) -> None:
    ca, key, certs = _load(pki)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _reply(self, der: bytes) -> None:
            body = answer(der, ca, key, certs)
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REQUEST:
                self.send_error(400, "bad request length")
                return
            self._reply(self.rfile.read(length))

        def do_GET(self) -> None:
            encoded = urllib.parse.unquote(self.path.lstrip("/"))
            try:
                self._reply(base64.b64decode(encoded, validate=False))
            except ValueError:
                self.send_error(400, "bad request")

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write("ocsp: " + (format % args) + "\n")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"ocsp responder on {host}:{port} for {len(certs)} certificate(s)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
