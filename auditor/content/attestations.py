"""Signature and attestation facts of manifests, shared by the API walker and the storage reader.

Pure (no I/O, no HTTP client), so the inside gathering reads storage without an HTTP stack.
"""

from __future__ import annotations

import base64
from typing import Any

from auditor import bounded
from auditor.judge import manifests as mf
from auditor.judge.scans import compact_vulns


def legacy_layer_facts(layer: mf.Descriptor) -> dict[str, Any]:
    item: dict[str, Any] = {"payload_digest": layer.digest,
                            "signature": layer.annotations.get(mf.SIGNATURE_ANNOTATION, "")}
    if layer.annotations.get(mf.CERTIFICATE_ANNOTATION):
        item["certificate"] = layer.annotations[mf.CERTIFICATE_ANNOTATION]
    if layer.annotations.get(mf.REKOR_ANNOTATION):
        item["rekor_bundle_present"] = True
    return item


def attestation_facts(envelope_text: str, where: str, scheme: str) -> dict[str, Any]:
    """A DSSE envelope carrying an in-toto statement: keep the envelope, and the vuln summary."""
    out: dict[str, Any] = {"scheme": scheme, "tag": where, "envelope": envelope_text}
    try:
        env = bounded.load_json(envelope_text, "attestation")
        statement = bounded.load_json(base64.b64decode(env["payload"]), "attestation payload")
    except (ValueError, KeyError, TypeError):
        out["error"] = "attestation is not a DSSE envelope with an in-toto statement"
        return out
    out.update(_statement_summary(statement))
    return out


def bundle_attestation_facts(bundle_text: str) -> dict[str, Any]:
    try:
        env = bounded.load_json(bundle_text, "bundle")["dsseEnvelope"]
        statement = bounded.load_json(base64.b64decode(env["payload"]), "bundle payload")
    except (ValueError, KeyError, TypeError):
        return {"error": "vuln attestation bundle has no readable DSSE statement"}
    return _statement_summary(statement)


def _statement_summary(statement: Any) -> dict[str, Any]:
    if not isinstance(statement, dict):
        return {"error": "statement is not an object"}
    predicate = _obj(statement.get("predicate"))
    scanner = _obj(predicate.get("scanner"))
    metadata = _obj(predicate.get("metadata"))
    digests = [f"{a}:{v}" for s in statement.get("subject") or [] if isinstance(s, dict)
               for a, v in (s.get("digest") or {}).items()]
    return {
        "predicate_type": str(statement.get("predicateType", "")),
        "subject_digests": digests,
        "scan_finished": metadata.get("scanFinishedOn") or metadata.get("scanStartedOn"),
        "scanner": {"uri": scanner.get("uri"), "version": scanner.get("version")},
        "vulnerabilities": compact_vulns(scanner["result"]) if isinstance(scanner.get("result"), dict) else None,
    }


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
