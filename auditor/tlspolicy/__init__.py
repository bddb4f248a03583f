"""TLS policy presets: published TLS server policies, kept as data, turned into check parameters.

A profile's `tls_policy:` names one of PRESETS. The policy's data files beside this module are
the published documents' values, with their version and source:

- `mozilla-server-side-tls-5.7.json`: Mozilla's server-side TLS guidelines, version 5.7, as served
  at https://ssl-config.mozilla.org/guidelines/5.7.json (the `modern` and `intermediate`
  configurations);
- `nist-800-52r2.yaml`: NIST SP 800-52 Rev. 2 section 3, transcribed (see the file's comments).

`preset_params(name)` maps a preset to the parameters of the checks it drives (tls.protocols,
tls.ciphers, tls.certificate, proxy.apache-tls, http.hsts, tls.ocsp-stapling). The profile applies
them over its parents' parameters; parameters written next to `tls_policy` (or in a child profile)
still win. docs/tls-policies.md tells what each preset judges and how the lab fares under each.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

MOZILLA_FILE = "mozilla-server-side-tls-5.7.json"
NIST_FILE = "nist-800-52r2.yaml"
PRESETS = ("mozilla-modern", "mozilla-intermediate", "nist-800-52r2")
# Mozilla's version names and certificate types, in regaudit's spelling.
MOZILLA_VERSIONS = {"TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
MOZILLA_KEY_TYPES = {"ecdsa": "EC", "rsa": "RSA"}


@cache
def _mozilla() -> dict[str, Any]:
    text = resources.files(__name__).joinpath(MOZILLA_FILE).read_text(encoding="utf-8")
    return dict(json.loads(text))


@cache
def _nist() -> dict[str, Any]:
    text = resources.files(__name__).joinpath(NIST_FILE).read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def describe(name: str) -> dict[str, Any]:
    """Where a preset's values come from: {preset, document, version, source}."""
    if name.startswith("mozilla-"):
        data = _mozilla()
        return {"preset": name, "document": f"Mozilla server-side TLS guidelines ({name[8:]} configuration)",
                "version": str(data["version"]), "source": data["href"]}
    if name == "nist-800-52r2":
        data = _nist()
        return {"preset": name, "document": data["title"], "version": data["version"], "source": data["source"]}
    raise KeyError(name)


def _mozilla_params(configuration: str) -> dict[str, dict[str, Any]]:
    conf = _mozilla()["configurations"][configuration]
    protocols = [MOZILLA_VERSIONS[v] for v in conf["tls_versions"]]
    tls12 = list(conf["ciphers"]["iana"])
    certificate: dict[str, Any] = {"key_types": [MOZILLA_KEY_TYPES[t] for t in conf["certificate_types"]],
                                   "max_lifetime_days": conf["maximum_certificate_lifespan"]}
    if conf["rsa_key_size"]:
        certificate["min_rsa_bits"] = conf["rsa_key_size"]
    if conf["ecdh_param_size"]:
        certificate["min_ec_bits"] = conf["ecdh_param_size"]
    return {
        "tls.protocols": {"allowed_protocols": protocols},
        "tls.ciphers": {"allowed_tls12_ciphers": tls12, "allowed_tls13_ciphers": list(conf["ciphersuites"])},
        "proxy.apache-tls": {"allowed_protocols": protocols, "allowed_tls12_ciphers": tls12},
        "tls.certificate": certificate,
        "http.hsts": {"min_max_age": conf["hsts_min_age"]},
        "tls.ocsp-stapling": {"required": bool(conf["ocsp_staple"])},
    }


def _nist_params() -> dict[str, dict[str, Any]]:
    data = _nist()
    protocols = list(data["protocols"])
    return {
        "tls.protocols": {"allowed_protocols": protocols},
        "tls.ciphers": {"allowed_tls12_ciphers": list(data["tls12_ciphers"]),
                        "allowed_tls13_ciphers": list(data["tls13_ciphers"]),
                        "forbidden_flags": list(data["forbidden_flags"])},
        "proxy.apache-tls": {"allowed_protocols": protocols, "allowed_tls12_ciphers": list(data["tls12_ciphers"])},
        "tls.certificate": dict(data["certificate"]),
        "tls.ocsp-stapling": {"required": bool(data["ocsp_staple"])},
    }


def preset_params(name: str) -> dict[str, dict[str, Any]]:
    """The check parameters a preset sets: {check id: {parameter: value}} (KeyError if unknown)."""
    if name == "mozilla-modern":
        return _mozilla_params("modern")
    if name == "mozilla-intermediate":
        return _mozilla_params("intermediate")
    if name == "nist-800-52r2":
        return _nist_params()
    raise KeyError(name)
