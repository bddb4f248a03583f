"""`admission.manifests`: Kyverno policies found in a directory of Kubernetes manifests, as facts.

Contract: reads every *.yaml, *.yml and *.json file under --manifests-dir (multi-document YAML,
`kind: List` items included); for each Kyverno ClusterPolicy or Policy records its failure actions,
its verifyImages image references and its attestors' public keys as SHA-256 fingerprints of their
DER SubjectPublicKeyInfo (so PEM formatting does not matter). The trusted keys (--cosign-key) are
fingerprinted the same way. No manifests dir given: NotApplicable.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from auditor import bounded
from auditor.errors import NotApplicable, ProbeError
from auditor.judge import shapes
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe

SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 2000
PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


def key_fingerprints(text: str) -> tuple[list[str], list[str]]:
    """(sha256 hex of each PEM public key's DER SPKI in `text`, errors)."""
    prints, errors = [], []
    blocks = PEM_BLOCK.findall(text)
    if not blocks:
        return [], ["no PEM public key"]
    for block in blocks:
        try:
            der = _spki_der(block)
        except (ValueError, TypeError) as exc:
            errors.append(f"not a public key: {exc}")
            continue
        prints.append(hashlib.sha256(der).hexdigest())
    return prints, errors


def _spki_der(block: str) -> bytes:
    """A PEM public key's SubjectPublicKeyInfo DER: through `cryptography` when it is installed, else
    pure Python (the gather-only zipapp on a bare host)."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        from auditor import der

        return der.public_key_der(block)
    key = serialization.load_pem_public_key(block.encode())
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _keys_facts(keys: Any) -> dict[str, JSON]:
    """One attestor entry's `keys` (publicKeys PEM, or a k8s://, kms:// reference)."""
    if not isinstance(keys, dict):
        return {"fingerprints": [], "errors": ["keys is not a mapping"]}
    public = keys.get("publicKeys")
    if isinstance(public, str) and "BEGIN" in public:
        prints, errors = key_fingerprints(public)
        return {"fingerprints": prints, "errors": errors}
    reference = public if isinstance(public, str) else keys.get("kms") or keys.get("secret")
    return {"fingerprints": [], "reference": str(reference) if reference else None,
            "errors": ["key is a reference, not inline PEM: cannot compare with the trusted keys"]}


def _attestors(entry: dict[str, Any]) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    for attestor in entry.get("attestors") or []:
        if not isinstance(attestor, dict):
            continue
        entries = []
        for item in attestor.get("entries") or []:
            if not isinstance(item, dict):
                continue
            facts: dict[str, JSON] = {"kind": next((k for k in ("keys", "keyless", "certificates", "attestor")
                                                     if k in item), "unknown")}
            if "keys" in item:
                facts.update(_keys_facts(item["keys"]))
            out_entry = facts
            entries.append(out_entry)
        out.append({"count": attestor.get("count"), "entries": entries})
    legacy = entry.get("key")
    if isinstance(legacy, str) and "BEGIN" in legacy:  # kyverno.io/v1 `key:` shorthand
        prints, errors = key_fingerprints(legacy)
        out.append({"count": None, "entries": [{"kind": "keys", "fingerprints": prints, "errors": errors}],
                    "legacy_key_field": True})
    return out


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def policy_facts(doc: dict[str, Any], file: str) -> dict[str, JSON]:
    """Facts of one Kyverno (Cluster)Policy document."""
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    rules = []
    for rule in spec.get("rules") or []:
        if not isinstance(rule, dict):
            continue
        validate: dict[str, Any] = rule["validate"] if isinstance(rule.get("validate"), dict) else {}
        match: dict[str, Any] = rule["match"] if isinstance(rule.get("match"), dict) else {}
        kinds = sorted({str(k) for clause in [match, *(match.get("any") or []), *(match.get("all") or [])]
                        if isinstance(clause, dict)
                        for k in ((clause.get("resources") or {}).get("kinds") or [])})
        images = []
        for entry in rule.get("verifyImages") or []:
            if not isinstance(entry, dict):
                continue
            images.append({
                "image_references": _as_list(entry.get("imageReferences") or entry.get("image")),
                "failure_action": entry.get("failureAction"),
                "attestors": _attestors(entry),
                "type": entry.get("type", "Cosign"),
            })
        rules.append({"name": rule.get("name"), "validate_failure_action": validate.get("failureAction"),
                      "match_kinds": kinds, "has_exclude": bool(rule.get("exclude")), "verify_images": images})
    return {
        "file": file,
        "api_version": doc.get("apiVersion"),
        "kind": doc.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "validation_failure_action": spec.get("validationFailureAction"),
        "failure_action_overrides": [
            {"action": o.get("action"), "namespaces": _as_list(o.get("namespaces"))}
            for o in spec.get("validationFailureActionOverrides") or [] if isinstance(o, dict)],
        "rules": rules,
    }


def _documents(path: Path) -> tuple[list[Any], str | None]:
    try:
        data = bounded.read_bytes(path, max_bytes=MAX_FILE_BYTES, what="manifest")
    except bounded.InputError as exc:
        return [], exc.reason
    try:
        docs = [d for d in bounded.load_yaml_documents(data, f"manifest {path}") if d is not None]
    except bounded.InputError as exc:
        return [], exc.reason
    except yaml.YAMLError as exc:
        return [], f"not YAML: {str(exc).splitlines()[0]}"
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out, None


def scan_manifests(directory: str) -> dict[str, JSON]:
    """Every manifest file under `directory`: counts, parse errors and Kyverno policies."""
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    policies: list[JSON] = []
    errors: list[str] = []
    kinds: dict[str, int] = {}
    for path in files[:MAX_FILES]:
        docs, error = _documents(path)
        if error:
            errors.append(f"{path}: {error}")
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            kind = str(doc.get("kind"))
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind in ("ClusterPolicy", "Policy") and str(doc.get("apiVersion", "")).startswith("kyverno.io/"):
                policies.append(policy_facts(doc, str(path)))
    return {"directory": directory, "files": len(files), "kinds": kinds, "errors": errors,
            "truncated": len(files) > MAX_FILES, "policies": policies}


def trusted_keys(paths: tuple[str, ...]) -> list[dict[str, JSON]]:
    out = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            out.append({"path": path, "fingerprints": [], "errors": [f"cannot read: {exc.strerror}"]})
            continue
        prints, errors = key_fingerprints(text)
        out.append({"path": path, "fingerprints": prints, "errors": errors})
    return out


async def registry_hosts(ctx: ProbeContext) -> list[str]:
    """How pods name this registry: the target's host[:port], else the registry's http.host."""
    hosts: list[str] = []
    if ctx.target.host:
        port = ctx.target.port
        hosts.append(ctx.target.host if port in (None, 443) else f"{ctx.target.host}:{port}")
    try:
        facts = await ctx.evidence("config.registry")
    except Exception:
        facts = None
    config = facts.get("config") if isinstance(facts, dict) else None
    http = config.get("http") if isinstance(config, dict) else None
    host = urlsplit(str(http.get("host") or "")) if isinstance(http, dict) else None
    if host and host.hostname:
        name = host.hostname if host.port in (None, 443) else f"{host.hostname}:{host.port}"
        if name not in hosts:
            hosts.append(name)
    return hosts


@probe("admission.manifests", shape=shapes.AdmissionManifests, timeout=30.0)
async def admission_manifests(ctx: ProbeContext) -> JSON:
    """Kyverno policies in --manifests-dir, the trusted cosign keys, and the registry's host names."""
    directory = ctx.target.path("manifests_dir")
    if not directory:
        raise NotApplicable("no Kubernetes policy manifests given (--manifests-dir)")
    if not os.path.isdir(directory):
        raise ProbeError(f"--manifests-dir {directory} is not a directory")
    facts = scan_manifests(directory)
    facts["trusted_keys"] = trusted_keys(ctx.target.cosign_keys)
    facts["registry_hosts"] = await registry_hosts(ctx)
    return facts
