"""Certificate chain facts and judgement with `cryptography`.

Two halves: `chain_facts` (probe side: parses the presented DER chain, records every cert's PEM
and properties, and the trust anchors from the store that issue it) and the pure functions
`verify_chain` / `name_matches` / `cert_properties`, which a check runs at any judging time on
the recorded PEMs, so `evaluate --now` re-judges expiry and validity without the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from auditor.judge.certs_policy import WEAK_HASHES

__all__ = ["WEAK_HASHES"]
def _key_facts(cert: x509.Certificate) -> dict[str, object]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return {"key_type": "RSA", "key_bits": key.key_size}
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"key_type": "EC", "key_bits": key.curve.key_size, "curve": key.curve.name}
    if isinstance(key, ed25519.Ed25519PublicKey):
        return {"key_type": "Ed25519", "key_bits": 256}
    if isinstance(key, ed448.Ed448PublicKey):
        return {"key_type": "Ed448", "key_bits": 456}
    if isinstance(key, dsa.DSAPublicKey):
        return {"key_type": "DSA", "key_bits": key.key_size}
    return {"key_type": type(key).__name__, "key_bits": None}


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(a) for a in ext.get_values_for_type(
        x509.IPAddress)]


def cert_properties(cert: x509.Certificate) -> dict[str, object]:
    """JSON facts of one certificate (validity as ISO UTC, key, signature hash, SANs, PEM)."""
    dns, ips = _sans(cert)
    hash_alg = cert.signature_hash_algorithm
    facts: dict[str, object] = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:x}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "signature_algorithm": getattr(cert.signature_algorithm_oid, "_name", None)
        or cert.signature_algorithm_oid.dotted_string,
        "signature_hash": hash_alg.name if hash_alg is not None else None,
        "san_dns": dns,
        "san_ip": ips,
        "self_signed": cert.subject == cert.issuer,
        "pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }
    facts.update(_key_facts(cert))
    return facts


def name_matches(cert: x509.Certificate, server_name: str) -> bool:
    """RFC 6125 matching on SANs only: IP literals against IP SANs, names against DNS SANs with a
    wildcard allowed as the whole leftmost label."""
    dns, ips = _sans(cert)
    try:
        addr = ipaddress.ip_address(server_name.strip("[]"))
    except ValueError:
        addr = None
    if addr is not None:
        return any(ipaddress.ip_address(ip) == addr for ip in ips)
    host = server_name.rstrip(".").lower()
    for pattern in (d.rstrip(".").lower() for d in dns):
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:] and "*" not in rest:
                return True
    return False


def _subject_for(cert: x509.Certificate,
                 server_name: str | None) -> x509.DNSName | x509.IPAddress | None:
    if server_name:
        try:
            return x509.IPAddress(ipaddress.ip_address(server_name.strip("[]")))
        except ValueError:
            return x509.DNSName(server_name.rstrip("."))
    dns, ips = _sans(cert)
    if dns:
        return x509.DNSName(dns[0].replace("*.", "wildcard.", 1))
    if ips:
        return x509.IPAddress(ipaddress.ip_address(ips[0]))
    return None


def verify_chain(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate],
                 now: datetime, server_name: str | None = None) -> tuple[bool, str]:
    """Verify `chain` (leaf first) up to one of `anchors` at `now` with cryptography's
    server verifier. With `server_name` None, the name check uses the leaf's own first SAN, so
    the answer is about the chain only. Returns (ok, reason)."""
    if not chain:
        return False, "no certificate"
    if not anchors:
        return False, "no certificate in the trust store issues this chain"
    subject = _subject_for(chain[0], server_name)
    if subject is None:
        return False, "leaf certificate has no subjectAltName"
    when = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    try:
        verifier = PolicyBuilder().store(Store(list(anchors))).time(when) \
            .build_server_verifier(subject)
        verifier.verify(chain[0], list(chain[1:]))
    except VerificationError as exc:
        return False, str(exc)
    except ValueError as exc:
        return False, f"cannot verify: {exc}"
    return True, "chain verifies"


@lru_cache(maxsize=4096)
def _subject(cert: x509.Certificate) -> x509.Name:
    """A certificate's subject, parsed once (the system store's ~140 roots are compared per chain)."""
    return cert.subject


def find_anchors(chain: Sequence[x509.Certificate],
                 store: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Store certificates whose subject issued (or is) one of the chain's certificates."""
    wanted = {c.issuer for c in chain} | {c.subject for c in chain if c.subject == c.issuer}
    seen: set[bytes] = set()
    anchors = []
    for cert in store:
        if _subject(cert) in wanted:
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:
                seen.add(der)
                anchors.append(cert)
    return anchors


def chain_facts(ders: Sequence[bytes], server_name: str | None, store: Sequence[x509.Certificate],
                store_source: str, now: datetime, source: str) -> dict[str, Any]:
    """Evidence for a presented chain: every cert's facts, the anchors, and the verdicts at scan
    time (informational: checks re-judge at their own time from the PEMs)."""
    certs: list[x509.Certificate] = []
    facts: list[dict[str, object]] = []
    for index, der in enumerate(ders):
        try:
            cert = x509.load_der_x509_certificate(der)
            facts.append(cert_properties(cert))
            certs.append(cert)
        except ValueError as exc:
            facts.append({"error": f"certificate {index} does not parse: {exc}"})
    anchors = find_anchors(certs, store)
    out: dict[str, Any] = {
        "source": source,
        "server_name": server_name,
        "chain": facts,
        "anchors": [a.public_bytes(serialization.Encoding.PEM).decode("ascii") for a in anchors],
        "trust_store": store_source,
    }
    if certs:
        ok, reason = verify_chain(certs, anchors, now)
        out["chain_verified_at_scan"] = {"ok": ok, "reason": reason}
        if server_name:
            out["name_matches"] = name_matches(certs[0], server_name)
    return out


def load_pems(pems: Sequence[str]) -> list[x509.Certificate]:
    """Certificates from recorded PEM strings (raises ValueError on a bad one)."""
    return [x509.load_pem_x509_certificate(p.encode("ascii")) for p in pems]
