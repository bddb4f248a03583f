"""The pure-Python parts the gather-only zipapp relies on, checked against `cryptography`.

DER reading (certificate subjects and validity, public-key DER) must give the facts the installed
CLI gets from `cryptography`; on-host Ed25519 signing must verify with the control host's
verifier (and equal cryptography's deterministic signature); the 3.9 source rewrite must keep
behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from lab.fleet import find_python39

from auditor import der, signing
from auditor.fleet import evidence_sign
from auditor.fleet.build_zipapp import for_py39
from auditor.probes.admission import key_fingerprints

NAMES = [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.regaudit.test")]),
    x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A, B+C"),
               x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, " lead#space "),
               x509.NameAttribute(NameOID.COMMON_NAME, "#hash;semi<gt>\"q\"\\")]),
    x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "multi"),
                                               x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
               x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test")]),
               x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.test")]),
               x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.LOCALITY_NAME, "Zürich")]),
               x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.USER_ID, "uid1")])]),
]


def _certificate(name: x509.Name, not_before: dt.datetime, not_after: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("name", NAMES, ids=["cn", "escaping", "multi-valued"])
def test_certificate_facts_equal_cryptography(name: x509.Name) -> None:
    # UTCTime before 2050, GeneralizedTime after: both encodings occur in real bundles.
    bundle = _certificate(name, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                          dt.datetime(2051, 6, 7, 8, 9, 10, tzinfo=dt.UTC)) + _certificate(
        name, dt.datetime(1999, 12, 31, tzinfo=dt.UTC), dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
    expected = [{"subject": c.subject.rfc4514_string(), "not_before": c.not_valid_before_utc.isoformat(),
                 "not_after": c.not_valid_after_utc.isoformat()} for c in x509.load_pem_x509_certificates(bundle)]
    assert der.certificates(bundle) == expected


def test_not_a_certificate_is_a_clear_error() -> None:
    with pytest.raises(der.DerError, match="no certificate"):
        der.certificates(b"hello")
    with pytest.raises(der.DerError):
        der.certificates(b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n")


def test_public_key_der_equals_cryptography() -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()).public_key(), ed25519.Ed25519PrivateKey.generate().public_key(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()]
    for key in keys:
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        expected = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert der.public_key_der(pem) == expected
    prints, errors = key_fingerprints("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    assert prints == [] and errors and errors[0].startswith("not a public key")
    with pytest.raises(der.DerError):
        der.public_key_der("-----BEGIN PUBLIC KEY-----\nMAMCAQA=\n-----END PUBLIC KEY-----\n")


def test_on_host_ed25519_signature_verifies_on_the_control_host(tmp_path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = tmp_path / "sign.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    data = b'{"format": "regaudit-evidence/1"}\n'
    envelope = json.loads(evidence_sign.load_signer(str(pem))(data))
    assert envelope == signing.sign(data, key)  # Ed25519 is deterministic: byte-identical to cryptography's
    assert signing.verify(data, envelope, key.public_key())[0] is True
    valid, reason = signing.verify(data.replace(b"1", b"2"), envelope, key.public_key())
    assert not valid and "does not match" in reason


def test_only_unencrypted_ed25519_keys_sign_on_hosts(tmp_path) -> None:
    from auditor.errors import UsageError

    pem = tmp_path / "ec.pem"
    pem.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(UsageError, match="Ed25519"):
        evidence_sign.load_signer(str(pem))
    with pytest.raises(UsageError, match="cannot read"):
        evidence_sign.load_signer(str(tmp_path / "missing.pem"))


SNIPPET = '''
from __future__ import annotations
from typing import Any, TypedDict
Access = TypedDict("Access", {"from": str | None, "rules": list[Any]}, total=False)
JSONish = dict[str, int] | list[int] | None
FLAGS = 1 | 2
def kind(value):
    if isinstance(value, int | str):
        return "scalar"
    if issubclass(type(value), dict | list):
        return "container"
    return "other" + str(FLAGS)
'''


def test_py39_rewrite_keeps_behaviour_and_runs_on_39() -> None:
    rewritten = for_py39(SNIPPET)
    assert "int | str" not in rewritten and "FLAGS = 1 | 2" in rewritten
    namespaces: list[dict] = [{}, {}]
    exec(compile(SNIPPET, "a", "exec"), namespaces[0])
    exec(compile(rewritten, "b", "exec"), namespaces[1])
    for value in (1, "x", {}, [], 2.5):
        assert namespaces[0]["kind"](value) == namespaces[1]["kind"](value)
    py39 = find_python39()
    if py39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    proc = subprocess.run([py39, "-I", "-S", "-c", rewritten + "\nprint(kind(1), kind([]), kind(2.5))"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["scalar", "container", "other3"]
    fields = subprocess.run([py39, "-I", "-S", "-c", rewritten + "\nprint(sorted(Access.__annotations__))"],
                            capture_output=True, text=True, timeout=30)
    assert fields.returncode == 0 and fields.stdout.strip() == "['from', 'rules']", fields.stderr


def test_arrival_check_flags_altered_and_unsigned_evidence(tmp_path) -> None:
    import sys

    key = ed25519.Ed25519PrivateKey.generate()
    pem, pub = tmp_path / "sign.pem", tmp_path / "sign.pub"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    signer = evidence_sign.load_signer(str(pem))
    for name in ("good", "altered", "unsigned"):
        data = f'{{"host": "{name}"}}\n'.encode()
        (tmp_path / f"{name}.json").write_bytes(data)
        if name != "unsigned":
            (tmp_path / f"{name}.json.sig").write_bytes(signer(data))
    (tmp_path / "altered.json").write_bytes(b'{"host": "forged"}\n')

    def check(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "auditor.fleet.verify", "--key", str(pub),
                               str(tmp_path / f"{name}.json")], capture_output=True, text=True, timeout=60)

    good, altered, unsigned = check("good"), check("altered"), check("unsigned")
    assert good.returncode == 0 and ": OK: valid ed25519" in good.stdout
    assert altered.returncode == 1 and "signature INVALID" in altered.stdout
    assert unsigned.returncode == 1 and "has no signature" in unsigned.stdout
