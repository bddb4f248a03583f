"""Facts about OCSP stapling from one TLS <= 1.2 handshake that asked for it (status_request).

`stapling_facts` records what the server did (echoed the extension? sent a CertificateStatus?) and
what the stapled response says (status, certificate status, validity window, whether it is about
the leaf the server presented), plus the OCSP responder URLs the leaf names. No judgement here:
the tls.ocsp-stapling check judges these facts at the audit's time.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID


def responder_urls(leaf_der: bytes | None) -> list[str]:
    """The OCSP responder URLs in the leaf's Authority Information Access extension."""
    if not leaf_der:
        return []
    try:
        cert = x509.load_der_x509_certificate(leaf_der)
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (ValueError, x509.ExtensionNotFound):
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP]


def response_facts(der: bytes, leaf_der: bytes | None) -> dict[str, Any]:
    """What a DER OCSPResponse says, as JSON facts (an `error` key when it does not parse)."""
    facts: dict[str, Any] = {"bytes": len(der), "der_b64": base64.b64encode(der).decode()}
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        facts["error"] = f"stapled response does not parse: {exc}"
        return facts
    facts["response_status"] = response.response_status.name
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return facts
    facts.update({
        "cert_status": response.certificate_status.name,
        "produced_at": response.produced_at_utc.isoformat(),
        "this_update": response.this_update_utc.isoformat(),
        "next_update": response.next_update_utc.isoformat() if response.next_update_utc else None,
        "serial": format(response.serial_number, "x"),
    })
    if response.revocation_time_utc is not None:
        facts["revocation_time"] = response.revocation_time_utc.isoformat()
    if leaf_der:
        try:
            leaf = x509.load_der_x509_certificate(leaf_der)
            facts["about_leaf"] = response.serial_number == leaf.serial_number
        except ValueError:
            facts["about_leaf"] = None
    return facts


def stapling_facts(version: str, echoed: bool | None, der: bytes | None, error: str,
                   leaf_der: bytes | None) -> dict[str, Any]:
    """The `ocsp_stapling` evidence of one address."""
    facts: dict[str, Any] = {"asked_in": version, "status_request_echoed": bool(echoed), "stapled": der is not None,
                             "responder_urls": responder_urls(leaf_der)}
    if error:
        facts["error"] = error
    if der is not None:
        facts["response"] = response_facts(der, leaf_der)
    return facts
