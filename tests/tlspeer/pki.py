"""Test PKI made with cryptography: a root, an intermediate and leaves with chosen defects."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Issued:
    cert: x509.Certificate
    key: Key

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn: str, issuer: Issued | None = None, *, ca: bool = False, key: Key | None = None,
          dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), not_before: dt.datetime | None = None,
          days: int = 365, hash_alg: hashes.SHA256 | hashes.SHA384 | None = None) -> Issued:
    """A certificate for `cn`, self-signed when `issuer` is None."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    start = not_before or NOW - dt.timedelta(days=10)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn))
               .issuer_name(issuer.cert.subject if issuer else _name(cn))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hash_alg or hashes.SHA256()), key)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued

    def leaf(self, **kwargs: object) -> Issued:
        kwargs.setdefault("dns", ("registry.test", "*.apps.test"))
        return issue("registry.test", self.intermediate, **kwargs)  # type: ignore[arg-type]


def make_pki() -> Pki:
    root = issue("Test Root CA", ca=True, not_before=NOW - dt.timedelta(days=400), days=3650)
    intermediate = issue("Test Intermediate CA", root, ca=True, not_before=NOW - dt.timedelta(days=300),
                         days=1825)
    return Pki(root, intermediate)


def sha1_rsa1024_self_signed(workdir: Path, cn: str = "registry.test") -> x509.Certificate:
    """A self-signed RSA-1024 SHA-1 certificate made by the openssl CLI (cryptography refuses to
    sign with SHA-1). Raises FileNotFoundError when openssl is not installed."""
    key, crt = workdir / "sha1.key", workdir / "sha1.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:1024", "-sha1", "-nodes", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}", "-keyout", str(key), "-out", str(crt), "-days", "3650"],
                   check=True, capture_output=True)
    return x509.load_pem_x509_certificate(crt.read_bytes())
