"""Check, independently of regaudit, that the registry holds what content.json says.

Contract: `verify(lab)` reads <base_dir>/content.json and, for every recorded tag, asks the
registry (HTTP API V2) and the scan directory for six facts mirroring the content checks:
signed (a `.sig` tag or a bundle in the referrers tag schema exists), signature_valid (one
signature verifies with the trusted cosign.pub, with `cryptography`, and names this digest and
repository), scanned, scan_fresh (CreatedAt within 48h), scan_digest_match (RepoDigests name
the current digest) and scan_clean (no HIGH or CRITICAL). A tag is consistent when every fact
holds except the one its recorded defect breaks (a missing signature makes signature_valid
moot, a missing scan the other scan facts). Returns {"ok": bool, "tags": {ref: {...facts, "expected_failure", "consistent"}}}.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import cosign, credentials
from .labconf import LabConfig
from .registry import Registry

FACT_OF_CHECK = {
    "signatures.present": "signed",
    "signatures.valid": "signature_valid",
    "scans.present": "scanned",
    "scans.fresh": "scan_fresh",
    "scans.digest-match": "scan_digest_match",
    "scans.severity": "scan_clean",
}
MAX_SCAN_AGE = timedelta(hours=48)
ACCEPT = ("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
          "application/vnd.docker.distribution.manifest.v2+json",
          "application/vnd.docker.distribution.manifest.list.v2+json")


def _verifies(public: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


async def _signature_facts(reg: Registry, repo: str, digest: str, tags: set[str], hostname: str,
                           public: ec.EllipticCurvePublicKey) -> tuple[bool, bool, str]:
    legacy, fallback = cosign.signature_tag(digest), cosign.signature_tag(digest, "")
    signed = valid = False
    why = "no signature"
    if legacy in tags:
        signed = True
        manifest = (await reg.get_manifest(repo, legacy, ACCEPT)).json()
        for layer in manifest.get("layers", []):
            payload = (await reg.request("GET", f"/v2/{repo}/blobs/{layer['digest']}",
                                         scope=f"repository:{repo}:pull")).content
            b64 = (layer.get("annotations") or {}).get(cosign.SIGNATURE_ANNOTATION, "")
            if not _verifies(public, base64.b64decode(b64), payload):
                why = "signature does not verify with the trusted key"
                continue
            critical = json.loads(payload)["critical"]
            if critical["image"]["docker-manifest-digest"] != digest:
                why = "payload names another digest"
            elif critical["identity"]["docker-reference"] != f"{hostname}/{repo}":
                why = "payload names another repository"
            else:
                valid, why = True, "valid legacy signature"
    if fallback in tags and not valid:
        index = (await reg.get_manifest(repo, fallback, ACCEPT)).json()
        for entry in index.get("manifests", []):
            referrer = (await reg.get_manifest(repo, entry["digest"], ACCEPT)).json()
            if referrer.get("artifactType") != cosign.BUNDLE_MEDIA_TYPE:
                continue
            signed = True
            blob = (await reg.request("GET", f"/v2/{repo}/blobs/{referrer['layers'][0]['digest']}",
                                      scope=f"repository:{repo}:pull")).json()
            env = blob["dsseEnvelope"]
            body = base64.b64decode(env["payload"])
            sig = base64.b64decode(env["signatures"][0]["sig"])
            if not _verifies(public, sig, cosign.pae(env["payloadType"], body)):
                why = "bundle signature does not verify with the trusted key"
            elif {"sha256": digest.split(":", 1)[1]} not in [s.get("digest") for s in
                                                             json.loads(body).get("subject", [])]:
                why = "bundle statement names another digest"
            else:
                valid, why = True, "valid sigstore bundle"
    return signed, valid, why


def _scan_facts(path: Path, hostname: str, repo: str, digest: str, now: datetime) -> dict[str, bool]:
    if not path.exists():
        return {"scanned": False}
    report = json.loads(path.read_text())
    created = datetime.fromisoformat(report["CreatedAt"].replace("Z", "+00:00"))
    severities = [v.get("Severity") for r in report.get("Results") or []
                  for v in r.get("Vulnerabilities") or []]
    return {
        "scanned": True,
        "scan_fresh": now - created <= MAX_SCAN_AGE,
        "scan_digest_match": f"{hostname}/{repo}@{digest}" in (report["Metadata"].get("RepoDigests") or []),
        "scan_clean": not any(s in ("HIGH", "CRITICAL") for s in severities),
    }


async def verify_async(lab: LabConfig) -> dict[str, Any]:
    record = json.loads(lab.content_json.read_text())
    public = serialization.load_pem_public_key(Path(record["cosign"]["public_key"]).read_bytes())
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("cosign.pub is not an ECDSA key")
    user, password, ca = credentials.push_credentials(lab)
    now = datetime.now(UTC)
    out: dict[str, Any] = {}
    async with Registry(lab.registry_url(), username=user, password=password, token_verify=ca) as reg:
        for repo, body in record["repositories"].items():
            tags = set(await reg.tags(repo))
            for tag, rec in body["tags"].items():
                resp = await reg.get_manifest(repo, tag, ACCEPT)
                digest = resp.headers.get("docker-content-digest", "")
                signed, valid, why = await _signature_facts(reg, repo, digest, tags, lab.hostname, public)
                facts: dict[str, Any] = {"digest": digest, "digest_recorded": digest == rec["digest"],
                                         "signed": signed, "signature": why}
                if signed:                # an unsigned tag has no signature to judge
                    facts["signature_valid"] = valid
                facts.update(_scan_facts(lab.scan_dir / f"{repo.replace('/', '_')}_{tag}.json",
                                         lab.hostname, repo, digest, now))
                defect = (rec.get("defect") or {}).get("check")
                broken = FACT_OF_CHECK.get(defect or "")
                consistent = facts["digest_recorded"]
                for check, fact in FACT_OF_CHECK.items():
                    if fact not in facts:
                        continue          # moot: no scan to judge
                    consistent = consistent and facts[fact] == (fact != broken)
                    if check == defect and fact not in facts:
                        consistent = False
                facts["expected_failure"] = defect
                facts["consistent"] = consistent
                out[f"{repo}:{tag}"] = facts
    return {"ok": all(f["consistent"] for f in out.values()), "tags": out}


def verify(lab: LabConfig) -> dict[str, Any]:
    return asyncio.run(verify_async(lab))
