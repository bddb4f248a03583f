"""The token variant's auth server: the distribution token protocol over HTTPS.

Contract (distribution docs/spec/auth/token.md, registry/auth/token/token.go):
`GET /token?service=<svc>&scope=<type:name:actions>...` with Basic credentials answers 200
`{"token", "access_token", "expires_in", "issued_at"}`; the JWT is ES256 with an `x5c` chain
(signing certificate, then the lab token root) that verifies against the registry's
`rootcertbundle`, and carries iss/sub/aud/exp/nbf/iat/jti/access. Access is the intersection of
what was asked and what the ACL grants. Bad credentials get 401 and no token; a service other
than ours gets 400; anonymous requests get a token with no access at all, unless the config sets
`anonymous_push: true` (a seeded defect: anonymous gets pull and push on every repository).
`POST /token` with `grant_type=password` form fields is accepted too (OAuth2 password grant).

`prepare(base_dir, hostname)` makes the signing root and key, the ACL/config YAML (a pull-only
and a push user, bcrypt hashes) and 0600 credentials files, and returns their paths.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hmac
import json
import os
import secrets
import socket
import ssl
import sys
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from .credentials import write_credentials
from .labconf import LabConfig

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # glibc/libxcrypt crypt(3): bcrypt ($2b$) hashing and verification

ISSUER = "Registry Auth Service"   # the guide's auth.token.issuer
DEFAULT_EXPIRATION = 300
PULL_USER = "puller"
PUSH_USER = "pusher"


# -- preparation ------------------------------------------------------------------------
def bcrypt_hash(password: str) -> str:
    """A $2b$ bcrypt hash (cost 10) via crypt(3)."""
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))


def bcrypt_verify(password: str, hashed: str) -> bool:
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    computed = crypt.crypt(password, hashed)
    return computed is not None and hmac.compare_digest(computed, hashed)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool, days: int) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regaudit lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def prepare(base_dir: str | Path, hostname: str, *, anonymous_push: bool = False,
            issuer: str = ISSUER, days: int = 365) -> dict[str, Any]:
    """Create the token service's material under <base_dir>/token; returns the paths.

    Keys of the result: dir, rootcertbundle (the registry's auth.token.rootcertbundle),
    key and cert (the JWT signing key and its certificate), acl (the service's YAML config:
    issuer, service, users, acl, anonymous_push), credentials {pull, push} (0600 JSON files
    {"username", "password"}), users {pull, push}, service, issuer. Idempotent: existing
    keys, certificates and passwords are kept; the ACL file is rewritten (anonymous_push).
    """
    d = Path(base_dir) / "token"
    d.mkdir(parents=True, exist_ok=True)
    root_key_p, root_p = d / "root.key", d / "root.crt"
    key_p, cert_p = d / "signing.key", d / "signing.crt"
    if not (root_key_p.exists() and root_p.exists() and key_p.exists() and cert_p.exists()):
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert("regaudit lab token root", root_key, None, root_key, True, days)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert("regaudit lab token signer", key, root, root_key, False, days)
        pem = serialization.Encoding.PEM
        _write_private(root_key_p, root_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        _write_private(key_p, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        root_p.write_bytes(root.public_bytes(pem))
        cert_p.write_bytes(cert.public_bytes(pem))
    creds = {"pull": d / "pull.credentials.json", "push": d / "push.credentials.json"}
    users = {"pull": PULL_USER, "push": PUSH_USER}
    hashes_: dict[str, str] = {}
    for role, path in creds.items():
        if path.exists():
            password = json.loads(path.read_text())["password"]
        else:
            password = secrets.token_urlsafe(24)
            write_credentials(path, users[role], password)
        hashes_[users[role]] = bcrypt_hash(password)
    acl_doc = {
        "issuer": issuer,
        "service": hostname,
        "expiration": DEFAULT_EXPIRATION,
        "anonymous_push": anonymous_push,
        "users": {user: {"password": h} for user, h in hashes_.items()},
        "acl": [
            {"account": PUSH_USER, "type": "repository", "name": "*", "actions": ["pull", "push"]},
            {"account": PUSH_USER, "type": "registry", "name": "catalog", "actions": ["*"]},
            {"account": PULL_USER, "type": "repository", "name": "*", "actions": ["pull"]},
            {"account": PULL_USER, "type": "registry", "name": "catalog", "actions": ["*"]},
        ],
    }
    acl_p = d / "acl.yaml"
    tmp = acl_p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(acl_doc, fh, sort_keys=False)
    os.replace(tmp, acl_p)
    return {"dir": str(d), "rootcertbundle": str(root_p), "key": str(key_p), "cert": str(cert_p),
            "acl": str(acl_p), "credentials": {k: str(v) for k, v in creds.items()},
            "users": users, "service": hostname, "issuer": issuer}


# -- JWT ----------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]) -> str:
    """A compact JWS, ES256 (raw r||s, as JOSE and libtrust expect), x5c = DER chain."""
    header = {"typ": "JWT", "alg": "ES256",
              "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """`repository:name:pull,push` -> (type, name, actions); names may hold ':' (host:port)."""
    typ, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not typ or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


class Authority:
    """Decides access and issues tokens from the ACL config."""

    def __init__(self, config: dict[str, Any], key: ec.EllipticCurvePrivateKey,
                 chain: list[x509.Certificate]) -> None:
        self.config = config
        self.key = key
        self.chain = chain
        self.service = str(config["service"])
        self.issuer = str(config.get("issuer", ISSUER))
        self.expiration = int(config.get("expiration", DEFAULT_EXPIRATION))
        self.anonymous_push = bool(config.get("anonymous_push", False))
        # Successful bcrypt checks are remembered (as a keyed MAC, never the password) so a
        # client fetching many scopes costs one bcrypt, not one per token.
        self._mac_key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()

    def authenticate(self, username: str, password: str) -> bool:
        user = (self.config.get("users") or {}).get(username)
        if not isinstance(user, dict):
            return False
        stored = str(user.get("password", ""))
        mac = hmac.new(self._mac_key, f"{username}\0{password}\0{stored}".encode(), "sha256").digest()
        if mac in self._verified:
            return True
        if bcrypt_verify(password, stored):
            self._verified.add(mac)
            return True
        return False

    def allowed(self, account: str, typ: str, name: str) -> set[str]:
        if not account:
            return {"pull", "push"} if self.anonymous_push and typ == "repository" else set()
        granted: set[str] = set()
        for rule in self.config.get("acl") or []:
            if rule.get("account") == account and rule.get("type") == typ \
                    and fnmatch.fnmatchcase(name, str(rule.get("name", ""))):
                granted.update(rule.get("actions") or [])
        return granted

    def grant(self, account: str, scopes: list[str]) -> list[dict[str, Any]]:
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            typ, name, actions = parsed
            allowed = self.allowed(account, typ, name)
            given = [a for a in actions if a in allowed or "*" in allowed]
            if given:
                access.append({"type": typ, "name": name, "actions": given})
        return access

    def issue(self, account: str, scopes: list[str]) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": account, "aud": self.service, "exp": now + self.expiration,
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(16),
                  "access": self.grant(account, scopes)}
        token = sign_jwt(claims, self.key, self.chain)
        issued = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "access_token": token, "expires_in": self.expiration, "issued_at": issued}


class Handler(BaseHTTPRequestHandler):
    """GET/POST /token. Never logs credentials or tokens."""

    authority: Authority
    server_version = "regaudit-lab-token/1"

    def setup(self) -> None:
        """TLS handshake in the request's own thread, bounded, so one slow client blocks no one."""
        self.request.settimeout(15)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"token-service {self.address_string()} {self.command} "
                         f"{urlsplit(self.path).path} {args[1] if len(args) > 1 else ''}\n")

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="regaudit lab token service"'} if status == 401 else None
        self._json(status, {"errors": [{"code": code, "message": message}]}, headers)

    def _basic(self) -> tuple[str, str] | bool | None:
        """(user, password), None when absent, False when malformed."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, password) if sep else False

    def _answer(self, service: str, scopes: list[str], creds: tuple[str, str] | None) -> None:
        if service != self.authority.service:
            self._error(400, "INVALID_SERVICE", "unknown service")
            return
        account = ""
        if creds is not None:
            if not self.authority.authenticate(*creds):
                self._error(401, "UNAUTHORIZED", "invalid credentials")
                return
            account = creds[0]
        self._json(200, self.authority.issue(account, scopes))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._error(404, "NOT_FOUND", "no such endpoint")
            return
        query = parse_qs(url.query)
        creds = self._basic()
        if creds is False:
            self._error(401, "UNAUTHORIZED", "malformed credentials")
            return
        self._answer(query.get("service", [""])[0], query.get("scope", []),
                     creds if isinstance(creds, tuple) else None)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/token":
            self._error(404, "NOT_FOUND", "no such endpoint")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(min(length, 65536)).decode(errors="replace"))
        if form.get("grant_type", [""])[0] != "password":
            self._error(400, "UNSUPPORTED", "only grant_type=password is supported")
            return
        scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
        creds = (form.get("username", [""])[0], form.get("password", [""])[0])
        self._answer(form.get("service", [""])[0], scopes, creds)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        sys.stderr.write(f"token-service {client_address[0]}: {type(exc).__name__}: {exc}\n")


def _pick(section: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = section.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def load_authority(token: dict[str, Any]) -> Authority:
    acl_path = _pick(token, "acl", "config")
    key_path = _pick(token, "key", "signing_key")
    cert_path = _pick(token, "cert", "signing_cert")
    if not (acl_path and key_path and cert_path):
        raise ValueError("lab.json token needs acl, key and cert (see lab.content.token.prepare)")
    config = yaml.safe_load(Path(acl_path).read_text())
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: the token signing key must be ECDSA P-256")
    chain = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    bundle = _pick(token, "rootcertbundle")
    if bundle:
        chain += [c for c in x509.load_pem_x509_certificates(Path(bundle).read_bytes()) if c not in chain]
    return Authority(config, key, chain)


def make_server(lab: LabConfig) -> ThreadingHTTPServer:
    """The HTTPS server for lab.json token.listen (TLS cert/key from token.tls or tls)."""
    token = lab.token
    authority = load_authority(token)
    tls = token.get("tls") if isinstance(token.get("tls"), dict) else lab.tls
    cert = _pick(tls or {}, "cert", "certificate", "cert_file")
    key = _pick(tls or {}, "key", "private_key", "key_file")
    if not (cert and key):
        raise ValueError("lab.json needs tls {cert, key} (or token.tls) for the token service's HTTPS")
    listen = str(token.get("listen") or "0.0.0.0:8443")
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    handler = type("LabTokenHandler", (Handler,), {"authority": authority})
    server_cls: type[ThreadingHTTPServer] = _QuietServer
    if ":" in host:
        server_cls = type("V6Server", (_QuietServer,), {"address_family": socket.AF_INET6})
    server = server_cls((host, int(port)), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def serve(lab: LabConfig) -> None:
    """Serve until SIGTERM/SIGINT."""
    import signal

    server = make_server(lab)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"token-service listening on {server.server_address}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
