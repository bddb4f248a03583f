"""The lab's token service speaks the distribution token protocol and enforces its ACL.

The service runs for real (HTTPS on an ephemeral loopback port); tokens are checked with
`cryptography`: the ES256 signature (raw r||s) against the x5c leaf, the leaf against the
rootcertbundle the registry would trust, and the claims distribution 2.8 reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `lab` package

from lab.content import labconf, token

SERVICE = "registry.regaudit.test"


def _tls(d: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d / "tls.crt", d / "tls.key"


def _start(tmp: Path, anonymous_push: bool) -> tuple[Any, dict[str, Any], str, Path]:
    material = token.prepare(tmp, SERVICE, anonymous_push=anonymous_push)
    cert, key = _tls(tmp)
    lab = {"base_dir": str(tmp), "hostname": SERVICE, "registry": {"listen": "127.0.0.1:5000"},
           "content_profile": "token", "tls": {"cert": str(cert), "key": str(key)},
           "token": {**material, "listen": "127.0.0.1:0"}}
    (tmp / "lab.json").write_text(json.dumps(lab))
    server = token.make_server(labconf.load(tmp / "lab.json"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, material, f"https://127.0.0.1:{server.server_address[1]}/token", cert


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str, Path]]:
    server, material, url, ca = _start(tmp_path_factory.mktemp("token"), anonymous_push=False)
    yield material, url, ca
    server.shutdown()
    server.server_close()


def _creds(material: dict[str, Any], role: str) -> tuple[str, str]:
    body = json.loads(Path(material["credentials"][role]).read_text())
    return body["username"], body["password"]


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _check_jwt(jwt: str, material: dict[str, Any]) -> dict[str, Any]:
    """Verify as distribution does; returns the claims."""
    head_b64, claims_b64, sig_b64 = jwt.split(".")
    header = json.loads(_b64(head_b64))
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    roots = x509.load_pem_x509_certificates(Path(material["rootcertbundle"]).read_bytes())
    root_key = roots[0].public_key()
    assert isinstance(root_key, ec.EllipticCurvePublicKey)
    root_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    raw = _b64(sig_b64)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    leaf_key.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(_b64(claims_b64))
    assert claims["iss"] == "Registry Auth Service" and claims["aud"] == SERVICE
    assert claims["nbf"] <= claims["iat"] < claims["exp"] and claims["jti"]
    return claims


def _get(url: str, ca: Path, scope: str, auth: tuple[str, str] | None = None,
         service: str = SERVICE) -> httpx.Response:
    return httpx.get(url, params={"service": service, "scope": scope}, auth=auth,
                     verify=ssl.create_default_context(cafile=str(ca)), timeout=10)


def test_push_user_gets_pull_and_push(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, url, ca = svc
    resp = _get(url, ca, "repository:myapp/backend:pull,push", _creds(material, "push"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    claims = _check_jwt(body["token"], material)
    assert claims["sub"] == "pusher"
    assert claims["access"] == [{"type": "repository", "name": "myapp/backend", "actions": ["pull", "push"]}]


def test_pull_user_cannot_get_push(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, url, ca = svc
    resp = _get(url, ca, "repository:myapp/backend:pull,push", _creds(material, "pull"))
    claims = _check_jwt(resp.json()["token"], material)
    assert claims["access"] == [{"type": "repository", "name": "myapp/backend", "actions": ["pull"]}]


def test_bad_credentials_get_401_and_no_token(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, url, ca = svc
    user, _ = _creds(material, "push")
    resp = _get(url, ca, "repository:myapp/backend:pull", (user, "wrong-password"))
    assert resp.status_code == 401
    assert "token" not in resp.text
    assert _get(url, ca, "repository:x:pull", ("nobody", "x")).status_code == 401


def test_anonymous_gets_no_access(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, url, ca = svc
    resp = _get(url, ca, "repository:myapp/backend:pull,push")
    assert resp.status_code == 200
    assert _check_jwt(resp.json()["token"], material)["access"] == []


def test_other_service_is_refused(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, url, ca = svc
    assert _get(url, ca, "repository:a:pull", _creds(material, "push"), service="other").status_code == 400


def test_acl_file_holds_bcrypt_hashes_only(svc: tuple[dict[str, Any], str, Path]) -> None:
    material, _, _ = svc
    acl = yaml.safe_load(Path(material["acl"]).read_text())
    for role in ("pull", "push"):
        user, password = _creds(material, role)
        stored = acl["users"][user]["password"]
        assert stored.startswith("$2b$") and password not in Path(material["acl"]).read_text()
        assert token.bcrypt_verify(password, stored) and not token.bcrypt_verify(password + "x", stored)
    assert Path(material["credentials"]["push"]).stat().st_mode & 0o077 == 0


def test_anonymous_push_flag_is_the_seeded_defect(tmp_path: Path) -> None:
    server, material, url, ca = _start(tmp_path, anonymous_push=True)
    try:
        resp = _get(url, ca, "repository:myapp/backend:pull,push")
        claims = _check_jwt(resp.json()["token"], material)
        assert claims["sub"] == ""
        assert claims["access"] == [{"type": "repository", "name": "myapp/backend", "actions": ["pull", "push"]}]
    finally:
        server.shutdown()
        server.server_close()
