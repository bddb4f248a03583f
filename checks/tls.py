"""tls.* checks: judge the wire-level `tls.scan` evidence (protocols, suites, TLS 1.3, certificate).

One outcome per scanned address (per certificate chain for tls.certificate). Non-pass outcomes
carry the accepted versions and suites as observed evidence. The certificate is re-verified at
`ev.now` from the recorded PEMs and anchors, so `evaluate --now` re-judges expiry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped, warned
from auditor.judge.certs_policy import WEAK_HASHES
from auditor.judge.shapes import TlsScan, TlsScanAddress, TlsScanAddressCertificate
from auditor.judge.suites import ALL_VERSIONS, lookup
from auditor.model import Severity, Vantage

if TYPE_CHECKING:
    from cryptography import x509

PROBE = "tls.scan"
NEEDS = (PROBE,)
GUIDE_PROTOCOL = "Apache: SSLProtocol"
REFS = (
    "NIST SP 800-52 Rev. 2 3.1 (TLS versions), 3.3.1 (cipher suites)",
    "NIST SP 800-190 4.2.1 (registry: insecure connections)",
    "CIS Docker Benchmark 2.6 (TLS for the registry)",
)
GUIDE_SUITES = ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
FORBIDDEN_FLAGS = ("NULL", "EXPORT", "RC4", "3DES", "DES", "CBC", "anon", "SSLv2")


def _addresses(ev: Evidence) -> tuple[TlsScan, list[TlsScanAddress]]:
    scan = ev.typed(PROBE, TlsScan)
    addresses = scan.get("addresses") or []
    return scan, [a for a in addresses if isinstance(a, dict)]


def _subject(scan: TlsScan, entry: TlsScanAddress) -> str:
    address = str(entry.get("address"))
    shown = f"[{address}]" if ":" in address else address
    return f"{scan.get('host')}:{scan.get('port')} ({shown})"


def _accepted_versions(entry: TlsScanAddress) -> list[str]:
    protocols = entry.get("protocols") or {}
    return [v for v in ALL_VERSIONS if protocols.get(v) is True]


def _accepted_suites(entry: TlsScanAddress) -> dict[str, list[str]]:
    suites = entry.get("cipher_suites") or {}
    return {v: [str(s.get("name")) for s in suites.get(v) or []] for v in ALL_VERSIONS if v in suites}


def _certificate_chains(entry: TlsScanAddress, subject: str) -> list[tuple[str, TlsScanAddressCertificate]]:
    """Each certificate chain the address presented, with the subject a result about it names."""
    chains = [c for c in entry.get("certificates") or [] if isinstance(c, dict)]
    return [(f"{subject} {c['auth']} certificate" if c.get("auth") else subject, c) for c in chains]


def _unscanned(addresses: Sequence[TlsScanAddress], entry: TlsScanAddress,
               subject: str) -> Outcome | None:
    """The outcome for an address the scan could not judge, or None when it was scanned.

    An address nothing could connect to is skipped when another address was judged (e.g. an
    AAAA record while the scanning host has no IPv6 route); otherwise it is an error."""
    if not entry.get("error"):
        return None
    others = any(not a.get("error") for a in addresses if a is not entry)
    if entry.get("reachable") is False and others:
        return skipped(subject, f"no connection from the scanning host ({entry['error']}); "
                       "the other addresses are judged")
    return errored(subject, f"address not scanned: {entry['error']}")


def _no_scan(scan: TlsScan, addresses: Sequence[Any]) -> Iterator[Outcome]:
    if not addresses:
        reason = "; ".join(scan.get("errors") or []) or "no address was scanned"
        yield errored(f"{scan.get('host')}:{scan.get('port')}", f"TLS scan has no result: {reason}")


@check(
    id="tls.protocols",
    title="Only TLS 1.2 and TLS 1.3 are accepted",
    severity=Severity.HIGH,
    area="tls",
    vantage=Vantage.OUTSIDE,
    needs=NEEDS,
    guide=GUIDE_PROTOCOL,
    rationale="SSLv2, SSLv3, TLS 1.0 and 1.1 have practical attacks (DROWN, POODLE, BEAST) and lack "
    "modern AEAD suites; a server that still answers them lets an attacker downgrade clients.",
    passes_when="only TLS 1.2 and TLS 1.3 are accepted; SSLv2, SSLv3, TLS 1.0, TLS 1.1 are each "
    "refused (tested on the wire, whatever the local OpenSSL allows)",
    remediation="Apache: `SSLProtocol -all +TLSv1.2 +TLSv1.3`; nginx: `ssl_protocols TLSv1.2 TLSv1.3;`.",
    generator="apache-vhost",
    references=REFS,
    params={"allowed_protocols": ["TLSv1.2", "TLSv1.3"]},
)
def tls_protocols(ev: Evidence, params: Params) -> Iterator[Outcome]:
    scan, addresses = _addresses(ev)
    yield from _no_scan(scan, addresses)
    allowed = list(params.get("allowed_protocols") or ["TLSv1.2", "TLSv1.3"])
    for entry in addresses:
        subject = _subject(scan, entry)
        unscanned = _unscanned(addresses, entry, subject)
        if unscanned is not None:
            yield unscanned
            continue
        protocols = entry.get("protocols") or {}
        accepted = _accepted_versions(entry)
        observed = {"accepted": accepted, "answers": {v: protocols.get(v) for v in ALL_VERSIONS},
                    "accepted_suites": _accepted_suites(entry)}
        bad = [v for v in accepted if v not in allowed]
        undecided = [v for v in ALL_VERSIONS if v not in allowed and not isinstance(protocols.get(v), bool)]
        if bad:
            yield failed(subject, f"accepts {', '.join(bad)} (only {', '.join(allowed)} allowed)",
                         observed=observed, expected={"accepted_only": allowed})
        elif undecided:
            reasons = "; ".join(f"{v}: {protocols.get(v)}" for v in undecided)
            yield errored(subject, f"could not tell whether {', '.join(undecided)} is refused: {reasons}",
                          observed=observed, expected={"accepted_only": allowed})
        elif not accepted:
            yield errored(subject, "the server completed no TLS handshake in any version",
                          observed=observed, expected={"accepted_only": allowed})
        else:
            yield passed(subject, f"accepts {', '.join(accepted)} only", observed=observed,
                         expected={"accepted_only": allowed})


def _canonical(names: Sequence[str]) -> set[str]:
    """Profile suite names (IANA or OpenSSL spelling) as IANA names."""
    out = set()
    for name in names:
        suite = lookup(name)
        out.add(suite.name if suite is not None else name)
    return out


def _violations(version: str, suite: Mapping[str, Any], allowed: set[str], allowed13: set[str] | None,
                forbidden: Sequence[str]) -> list[str]:
    flags = set(suite.get("flags") or [])
    why = [f for f in forbidden if f in flags]
    if version != "SSLv2" and "forward-secret" not in flags:
        why.append("non-forward-secret")
    if "unknown" in flags:
        why.append("unknown suite")
    if version not in ("TLSv1.3", "SSLv2") and suite.get("name") not in allowed:
        why.append("not in the profile's allowlist")
    if version == "TLSv1.3" and allowed13 is not None and suite.get("name") not in allowed13:
        why.append("not in the profile's TLS 1.3 allowlist")
    return why


@check(
    id="tls.ciphers",
    title="Accepted cipher suites are in the allowlist",
    severity=Severity.HIGH,
    area="tls",
    vantage=Vantage.OUTSIDE,
    needs=NEEDS,
    guide="Apache: SSLCipherSuite",
    rationale="Every suite a server accepts is one an attacker can force: NULL, EXPORT, RC4, 3DES and "
    "CBC suites are broken or fragile, and without forward secrecy a stolen key decrypts past traffic.",
    passes_when="every TLS 1.2 suite the server accepts is in the profile's allowlist (guide: "
    "ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384); no NULL/EXPORT/RC4/3DES/CBC/"
    "non-forward-secret suite in any profile (a TLS policy preset may allow CBC, as NIST SP 800-52r2 "
    "does, and may restrict the TLS 1.3 suites)",
    remediation="Apache: `SSLCipherSuite ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384` "
    "with `SSLHonorCipherOrder on`; nginx: `ssl_ciphers` with the same list.",
    generator="apache-vhost",
    references=REFS,
    params={"allowed_tls12_ciphers": list(GUIDE_SUITES), "allowed_tls13_ciphers": None,
            "forbidden_flags": list(FORBIDDEN_FLAGS)},
)
def tls_ciphers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    scan, addresses = _addresses(ev)
    yield from _no_scan(scan, addresses)
    listed = params.get("allowed_tls12_ciphers")
    allowed = _canonical(GUIDE_SUITES if listed is None else listed)
    listed13 = params.get("allowed_tls13_ciphers")
    allowed13 = None if listed13 is None else _canonical(listed13)
    forbidden = list(params.get("forbidden_flags") or FORBIDDEN_FLAGS)
    for entry in addresses:
        subject = _subject(scan, entry)
        unscanned = _unscanned(addresses, entry, subject)
        if unscanned is not None:
            yield unscanned
            continue
        suites = entry.get("cipher_suites") or {}
        violations = []
        for version in ALL_VERSIONS:
            for suite in suites.get(version) or []:
                why = _violations(version, suite, allowed, allowed13, forbidden)
                if why:
                    violations.append({"version": version, "suite": suite.get("name"),
                                       "code": suite.get("code"), "why": why})
        incomplete = dict(entry.get("enumeration_errors") or {})
        observed: dict[str, Any] = {"accepted_protocols": _accepted_versions(entry),
                    "accepted_suites": _accepted_suites(entry),
                    "server_preference": entry.get("server_preference") or {}}
        expected = {"tls12_allowlist": sorted(allowed),
                    "never": [*forbidden, "non-forward-secret"]}
        if allowed13 is not None:
            expected["tls13_allowlist"] = sorted(allowed13)
        if violations:
            observed["violations"] = violations
            if incomplete:
                observed["enumeration_errors"] = incomplete
            names = sorted({f"{v['suite']} ({v['version']})" for v in violations})
            yield failed(subject, f"{len(violations)} accepted suite(s) not allowed: {', '.join(names)}",
                         observed=observed, expected=expected)
        elif incomplete:
            observed["enumeration_errors"] = incomplete
            yield errored(subject, "suite enumeration incomplete: "
                          + "; ".join(f"{v}: {r}" for v, r in incomplete.items()),
                          observed=observed, expected=expected)
        elif not any(suites.get(v) for v in ALL_VERSIONS):
            yield errored(subject, "no cipher suite was accepted in any version", observed=observed,
                          expected=expected)
        else:
            yield passed(subject, "every accepted suite is allowed", observed=observed, expected=expected)


@check(
    id="tls.tls13",
    title="TLS 1.3 is offered",
    severity=Severity.MEDIUM,
    area="tls",
    vantage=Vantage.OUTSIDE,
    needs=NEEDS,
    guide=GUIDE_PROTOCOL,
    rationale="TLS 1.3 removes the legacy key exchanges and suites entirely and encrypts the certificate; "
    "clients that can use it should.",
    passes_when="TLS 1.3 is offered",
    remediation="Apache: `SSLProtocol -all +TLSv1.2 +TLSv1.3` (mod_ssl with OpenSSL >= 1.1.1); "
    "nginx: `ssl_protocols TLSv1.2 TLSv1.3;`.",
    generator="apache-vhost",
    references=REFS,
)
def tls_tls13(ev: Evidence, params: Params) -> Iterator[Outcome]:
    scan, addresses = _addresses(ev)
    yield from _no_scan(scan, addresses)
    for entry in addresses:
        subject = _subject(scan, entry)
        unscanned = _unscanned(addresses, entry, subject)
        if unscanned is not None:
            yield unscanned
            continue
        answer = (entry.get("protocols") or {}).get("TLSv1.3")
        observed = {"accepted": _accepted_versions(entry),
                    "TLSv1.3": answer,
                    "TLSv1.3_suites": _accepted_suites(entry).get("TLSv1.3", [])}
        if answer is True:
            yield passed(subject, "TLS 1.3 is accepted", observed=observed, expected="TLSv1.3 accepted")
        elif answer is False:
            yield failed(subject, "TLS 1.3 is refused", observed=observed, expected="TLSv1.3 accepted")
        else:
            yield errored(subject, f"could not tell whether TLS 1.3 is accepted: {answer}",
                          observed=observed, expected="TLSv1.3 accepted")


def _key_problem(facts: Mapping[str, Any], min_rsa: int, min_ec: int) -> str | None:
    key_type, bits = facts.get("key_type"), facts.get("key_bits") or 0
    if key_type == "RSA" and bits < min_rsa:
        return f"RSA key of {bits} bits (minimum {min_rsa})"
    if key_type == "EC" and bits < min_ec:
        return f"EC key of {bits} bits (minimum {min_ec})"
    if key_type not in ("RSA", "EC", "Ed25519", "Ed448"):
        return f"{key_type} key"
    return None


def judge_chain(chain_facts: Mapping[str, Any], now: datetime,
                params: Params) -> tuple[list[str], dict[str, Any]]:
    """Problems of one recorded chain at `now`, and the observed summary (pure)."""
    min_days = int(params.get("min_days_left", 30))
    min_rsa = int(params.get("min_rsa_bits", 2048))
    min_ec = int(params.get("min_ec_bits", 256))
    facts = [c for c in chain_facts.get("chain") or [] if isinstance(c, dict)]
    broken = [str(c["error"]) for c in facts if "error" in c]
    if broken or not facts:
        return broken or ["no certificate was presented"], {"source": chain_facts.get("source")}
    from auditor.judge.certs import load_pems, name_matches, verify_chain  # X.509: only when judged

    certs: list[x509.Certificate] = load_pems([str(c["pem"]) for c in facts])
    anchors = load_pems([str(p) for p in chain_facts.get("anchors") or []])
    leaf, leaf_facts = certs[0], facts[0]
    server_name = chain_facts.get("server_name")
    problems: list[str] = []
    ok, reason = verify_chain(certs, anchors, now)
    if not ok:
        problems.append(f"chain does not verify: {reason}")
    if server_name and not name_matches(leaf, str(server_name)):
        problems.append(f"name {server_name} is not in the certificate's subjectAltName")
    days_left = (leaf.not_valid_after_utc - now).total_seconds() / 86400
    if leaf.not_valid_before_utc > now:
        problems.append(f"not valid before {leaf.not_valid_before_utc.isoformat()}")
    if days_left < 0:
        problems.append(f"expired on {leaf.not_valid_after_utc.isoformat()}")
    elif days_left < min_days:
        problems.append(f"{days_left:.1f} days left (minimum {min_days})")
    key_problem = _key_problem(leaf_facts, min_rsa, min_ec)
    if key_problem:
        problems.append(key_problem)
    key_types = params.get("key_types")
    if key_types and leaf_facts.get("key_type") not in key_types:
        problems.append(f"{leaf_facts.get('key_type')} key (the profile allows {', '.join(map(str, key_types))})")
    max_lifetime = params.get("max_lifetime_days")
    lifetime = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() / 86400
    if max_lifetime and lifetime > float(max_lifetime):
        problems.append(f"valid for {lifetime:.0f} days (the profile allows at most {max_lifetime})")
    for cert_facts in facts:
        if cert_facts.get("self_signed") and cert_facts is not leaf_facts:
            continue
        if str(cert_facts.get("signature_hash") or "").lower() in WEAK_HASHES:
            problems.append(f"{cert_facts.get('subject')} is signed with {cert_facts.get('signature_hash')}")
    observed = {
        "source": chain_facts.get("source"),
        "subject": leaf_facts.get("subject"),
        "issuer": leaf_facts.get("issuer"),
        "san_dns": leaf_facts.get("san_dns"),
        "san_ip": leaf_facts.get("san_ip"),
        "not_before": leaf_facts.get("not_before"),
        "not_after": leaf_facts.get("not_after"),
        "days_left": round(days_left, 1),
        "lifetime_days": round(lifetime, 1),
        "key": f"{leaf_facts.get('key_type')} {leaf_facts.get('key_bits')}",
        "signature_hashes": [c.get("signature_hash") for c in facts],
        "verification": reason,
        "trust_store": chain_facts.get("trust_store"),
    }
    return problems, observed


@check(
    id="tls.certificate",
    title="Certificate verifies, matches, and is not about to expire",
    severity=Severity.HIGH,
    area="tls",
    vantage=Vantage.OUTSIDE,
    needs=NEEDS,
    guide="Apache: SSLCertificateFile",
    rationale="Clients (docker, containerd) refuse an untrusted, mismatched or expired certificate, or "
    "are told to skip verification, which opens the registry credentials to interception.",
    passes_when="chain verifies to the trust store or the given CA bundle, name matches the host, not "
    "expired, at least N days left (30), RSA >= 2048 / EC >= 256 bits, no SHA-1/MD5 signature (a TLS policy "
    "preset may also limit the key types and the certificate's lifetime)",
    remediation="Install a certificate issued by a trusted CA for the registry's host name, with its "
    "intermediates (SSLCertificateFile holds the chain), RSA >= 2048 or ECDSA P-256+, signed with "
    "SHA-256 or better, and renew it before the last 30 days.",
    generator="apache-vhost",
    references=REFS,
    params={"min_days_left": 30, "min_rsa_bits": 2048, "min_ec_bits": 256, "key_types": None,
            "max_lifetime_days": None},
)
def tls_certificate(ev: Evidence, params: Params) -> Iterator[Outcome]:
    scan, addresses = _addresses(ev)
    yield from _no_scan(scan, addresses)
    expected = {"min_days_left": params.get("min_days_left", 30),
                "min_rsa_bits": params.get("min_rsa_bits", 2048),
                "min_ec_bits": params.get("min_ec_bits", 256),
                **{k: params[k] for k in ("key_types", "max_lifetime_days") if params.get(k)},
                "trusted": True, "name_matches": scan.get("server_name"),
                "no_signature_with": sorted(WEAK_HASHES)}
    for entry in addresses:
        subject = _subject(scan, entry)
        unscanned = _unscanned(addresses, entry, subject)
        if unscanned is not None:
            yield unscanned
            continue
        chains = _certificate_chains(entry, subject)
        if not chains:
            reason = entry.get("certificate_error") or "no certificate could be read"
            yield errored(subject, f"no certificate to judge: {reason}",
                          observed={"accepted": _accepted_versions(entry)}, expected=expected)
            continue
        for where, chain in chains:
            try:
                problems, observed = judge_chain(chain, ev.now, params)
            except ValueError as exc:
                yield errored(where, f"recorded certificate does not load: {exc}", expected=expected)
                continue
            if problems:
                yield failed(where, "; ".join(problems), observed=observed, expected=expected)
            else:
                yield passed(where, f"verifies, matches, {observed['days_left']} days left",
                             observed=observed, expected=expected)


def _stapling_problem(facts: Mapping[str, Any], now: datetime) -> str | None:
    """Why a recorded stapling answer does not count, or None when it is a valid, current staple."""
    if not facts.get("stapled"):
        why = ("the ServerHello did not acknowledge status_request" if not facts.get("status_request_echoed")
               else "status_request acknowledged but no CertificateStatus was sent")
        if not facts.get("responder_urls"):
            why += ("; the certificate names no OCSP responder, so the server has nothing to staple (use a CA "
                    "with an OCSP responder, or waive this check for a private CA without one)")
        return f"no stapled OCSP response: {why}"
    response = facts.get("response") or {}
    if response.get("error") or facts.get("error"):
        return str(response.get("error") or facts.get("error"))
    if response.get("response_status") != "SUCCESSFUL":
        return f"stapled OCSP response status {response.get('response_status')}"
    if response.get("cert_status") != "GOOD":
        return f"stapled OCSP response says the certificate is {response.get('cert_status')}"
    if response.get("about_leaf") is False:
        return "stapled OCSP response is about another certificate than the one presented"
    next_update = response.get("next_update")
    if next_update and datetime.fromisoformat(str(next_update)) < now:
        return f"stapled OCSP response is stale (nextUpdate {next_update})"
    this_update = response.get("this_update")
    if this_update and (datetime.fromisoformat(str(this_update)) - now).total_seconds() > 300:
        return f"stapled OCSP response is from the future (thisUpdate {this_update})"
    return None


@check(
    id="tls.ocsp-stapling",
    title="The server staples a valid OCSP response",
    severity=Severity.LOW,
    area="tls",
    vantage=Vantage.OUTSIDE,
    needs=NEEDS,
    guide="beyond (TLS hardening: OCSP stapling)",
    rationale="Without stapling, a client that checks revocation asks the CA's responder itself (leaking "
    "which registry it uses, and failing open when the responder is slow); with it, a revoked or "
    "mis-issued certificate is refused at the handshake.",
    passes_when="a TLS 1.2 handshake offering status_request gets a stapled OCSP response (CertificateStatus) "
    "for each certificate the server presents: response status successful, certificate good, about that "
    "certificate, and not past its nextUpdate at judging time",
    remediation="Apache: `SSLUseStapling On` in the TLS vhost and `SSLStaplingCache shmcb:ssl_stapling(128000)` "
    "at server level, with the issuer in the certificate chain (or SSLCACertificateFile); nginx: "
    "`ssl_stapling on; ssl_stapling_verify on;` with `ssl_trusted_certificate` naming the issuer chain. "
    "The certificate must name an OCSP responder the server can reach.",
    generator="apache-vhost",
    references=("RFC 6066 8 (Certificate Status Request)", "RFC 6960 (OCSP)",
                "NIST SP 800-52 Rev. 2 3.4.1 (mandatory extensions: Certificate Status Request)",
                "Mozilla server-side TLS guidelines 5.7: ocsp_staple"),
    params={"required": True},
)
def tls_ocsp_stapling(ev: Evidence, params: Params) -> Iterator[Outcome]:
    scan, addresses = _addresses(ev)
    yield from _no_scan(scan, addresses)
    required = bool(params.get("required", True))
    expected = {"stapled": True, "response_status": "SUCCESSFUL", "cert_status": "GOOD", "current": True}
    for entry in addresses:
        subject = _subject(scan, entry)
        unscanned = _unscanned(addresses, entry, subject)
        if unscanned is not None:
            yield unscanned
            continue
        chains = _certificate_chains(entry, subject)
        if not chains:
            yield errored(subject, f"no certificate was read: {entry.get('certificate_error') or 'none presented'}",
                          expected=expected)
            continue
        for where, chain in chains:
            facts = chain.get("ocsp_stapling")
            if not isinstance(facts, dict):
                yield errored(where, "the evidence has no OCSP stapling facts (recorded by an older regaudit: "
                              "audit again)", expected=expected)
                continue
            observed = {k: v for k, v in facts.items() if k != "response"}
            if isinstance(facts.get("response"), dict):
                observed["response"] = {k: v for k, v in facts["response"].items() if k != "der_b64"}
            if facts.get("undecided"):
                yield errored(where, f"could not tell whether the server staples: {facts['undecided']}",
                              observed, expected)
                continue
            problem = _stapling_problem(facts, ev.now)
            if problem is None:
                response = facts.get("response") or {}
                yield passed(where, f"staples a good OCSP response (nextUpdate {response.get('next_update')})",
                             observed, expected)
            elif required:
                yield failed(where, problem, observed, expected)
            else:
                yield warned(where, f"{problem} (the profile does not require stapling)", observed, expected)
