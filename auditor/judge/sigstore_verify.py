"""Keyless Sigstore bundle verification through sigstore-python (offline, pure apart from CPU).

Contract: `KeylessVerifier(trusted_root_json, identities)` builds one sigstore Verifier: the
given trusted root JSON (air-gapped sites, --trusted-root) or the production root embedded in
sigstore-python (`Verifier.production(offline=True)`, no TUF refresh). `verify(bundle_text,
digest)` returns a cosign.Verdict: the bundle must verify (certificate chain, tlog inclusion,
DSSE signature), its certificate must match one of `identities` ({issuer, subject}), and its
in-toto statement must name `digest`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.judge.cosign import INVALID, UNTRUSTED, UNVERIFIABLE, Verdict, check_statement

SCHEME = "sigstore-bundle (keyless)"


class KeylessVerifier:
    """One configured verifier; errors building it become `unverifiable` verdicts."""

    def __init__(self, trusted_root_json: str | None, identities: Sequence[Mapping[str, Any]]) -> None:
        self.identities = [(str(i.get("subject", "")), str(i.get("issuer", ""))) for i in identities]
        self.error = ""
        self._verifier: Any = None
        for sigstore_log in ("sigstore", "tuf"):
            logging.getLogger(sigstore_log).setLevel(logging.ERROR)
        try:
            from sigstore.models import TrustedRoot
            from sigstore.verify import Verifier

            if trusted_root_json:
                from sigstore_models.trustroot import v1 as trustroot_v1

                root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(trusted_root_json))
                self._verifier = Verifier(trusted_root=root)
            else:
                self._verifier = Verifier.production(offline=True)
        except Exception as exc:  # sigstore raises many types for a bad root
            self.error = f"cannot build the sigstore verifier: {type(exc).__name__}: {exc}"

    def verify(self, bundle_text: str, digest: str) -> Verdict:
        if self.error:
            return Verdict(UNVERIFIABLE, self.error, scheme=SCHEME)
        if not self.identities:
            return Verdict(UNVERIFIABLE, "keyless bundle, but the profile lists no keyless_identities "
                           "({issuer, subject}) to trust", scheme=SCHEME)
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle
        from sigstore.verify.policy import AnyOf, Identity

        try:
            bundle = Bundle.from_json(bundle_text)
        except Exception as exc:
            return Verdict(INVALID, f"bundle does not parse: {type(exc).__name__}: {exc}", scheme=SCHEME)
        policy = AnyOf([Identity(identity=s, issuer=i or None) for s, i in self.identities])
        try:
            payload_type, payload = self._verifier.verify_dsse(bundle, policy)
        except SigstoreError as exc:
            text = str(exc)
            status = UNTRUSTED if "identity" in text.lower() or "polic" in text.lower() else INVALID
            return Verdict(status, f"keyless verification failed: {text}", scheme=SCHEME)
        except Exception as exc:
            return Verdict(INVALID, f"keyless verification failed: {type(exc).__name__}: {exc}", scheme=SCHEME)
        if payload_type != "application/vnd.in-toto+json":
            return Verdict(INVALID, f"DSSE payloadType {payload_type!r} is not an in-toto statement", scheme=SCHEME)
        signer = _certificate_identity(bundle)
        return check_statement(payload, digest, signer, SCHEME)


def _certificate_identity(bundle: Any) -> str:
    try:
        from cryptography import x509

        cert = bundle.signing_certificate
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
        names += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
        return f"certificate for {', '.join(names) or 'unknown identity'}"
    except Exception:
        return "keyless certificate"
