"""The trust store a TLS probe verifies against (I/O): the system bundle plus a --ca-bundle file."""

from __future__ import annotations

import ssl
import warnings
from functools import cache
from pathlib import Path

from cryptography import x509

SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/ssl/cert.pem")


@cache
def _system_store() -> tuple[tuple[x509.Certificate, ...], str]:
    """The system bundle's certificates, read once per process (every scanned address shares it)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *SYSTEM_BUNDLES):
        if candidate and Path(candidate).is_file():
            try:
                with warnings.catch_warnings():  # some system roots have non-positive serials
                    warnings.simplefilter("ignore")
                    certs = x509.load_pem_x509_certificates(Path(candidate).read_bytes())
                return tuple(certs), candidate
            except ValueError:
                continue
    return (), "no system trust store"


def load_trust_store(ca_bundle: str | None = None) -> tuple[list[x509.Certificate], str]:
    """The system store's certificates plus those of `ca_bundle` (PEM) when given; returns
    (certs, where from). Raises OSError/ValueError when the named bundle cannot be read or holds
    no certificate."""
    certs, source = _system_store()
    if ca_bundle:
        extra = x509.load_pem_x509_certificates(Path(ca_bundle).read_bytes())
        return extra + list(certs), f"{ca_bundle} + {source}"
    return list(certs), source
