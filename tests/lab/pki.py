"""Lab PKI: a CA, RSA 3072 and ECDSA P-256 server certificates and cosign key
pairs, all made with the cryptography library.

Contract: private keys are written 0600 (or `key_mode`) owned by root, PEM, unencrypted PKCS#8;
certificates are PEM. Functions return the paths they wrote.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def write_key(path: Path, key: PrivateKey, mode: int = 0o600) -> Path:
    """Write `key` as PKCS#8 PEM with `mode`, created with that mode (never briefly wider)."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chown(path, 0, 0)
    os.chmod(path, mode)
    return path


def write_cert(path: Path, cert: x509.Certificate) -> Path:
    """Write a certificate as PEM, 0644."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)
    return path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regaudit lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(days: int = 730) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed ECDSA P-256 CA (pathlen 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("regaudit lab CA")).issuer_name(_name("regaudit lab CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     key_cert_sign=True, crl_sign=True, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, key: PrivateKey,
                     dns: list[str], ips: list[str], days: int, ocsp_url: str | None = None) -> x509.Certificate:
    """A TLS server certificate for `dns`/`ips`, signed by the CA, valid `days` from now; with
    `ocsp_url`, naming that OCSP responder in its Authority Information Access extension."""
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = x509.CertificateBuilder()
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    return (
        builder
        .subject_name(_name(dns[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def write_keypair(priv: Path, pub: Path) -> tuple[Path, Path]:
    """An ECDSA P-256 key pair: private PKCS#8 PEM (0600), public PKIX PEM (like cosign.pub)."""
    key = ec.generate_private_key(ec.SECP256R1())
    write_key(priv, key)
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    os.chmod(pub, 0o644)
    return priv, pub


def build(pki_dir: Path, *, dns: list[str], ips: list[str], cert_days: int, key_mode: int,
          ocsp_url: str | None = None) -> dict[str, str]:
    """Generate the whole lab PKI under pki_dir; returns name -> path (and not_after ISO time).

    With `ocsp_url` the server certificates name that OCSP responder (lab/ocsp_responder.py)."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca()
    write_key(pki_dir / "ca.key", ca_key)
    out = {"ca": str(write_cert(pki_dir / "ca.pem", ca_cert)), "ca_key": str(pki_dir / "ca.key")}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_cert = make_server_cert(ca_key, ca_cert, rsa_key, dns, ips, cert_days, ocsp_url)
    ec_cert = make_server_cert(ca_key, ca_cert, ec_key, dns, ips, cert_days, ocsp_url)
    if ocsp_url:
        out["ocsp_url"] = ocsp_url
    out["key"] = str(write_key(pki_dir / "server-rsa.key", rsa_key, key_mode))
    out["cert"] = str(write_cert(pki_dir / "server-rsa.pem", rsa_cert))
    out["ecdsa_key"] = str(write_key(pki_dir / "server-ecdsa.key", ec_key, key_mode))
    out["ecdsa_cert"] = str(write_cert(pki_dir / "server-ecdsa.pem", ec_cert))
    out["not_after"] = rsa_cert.not_valid_after_utc.isoformat().replace("+00:00", "Z")
    for prefix in ("cosign", "cosign-untrusted"):
        write_keypair(pki_dir / f"{prefix}.key", pki_dir / f"{prefix}.pub")
    return out
