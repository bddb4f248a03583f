"""Signature and attestation facts of manifests, shared by the API walker and the storage reader.

Pure (no I/O, no HTTP client), so the inside gathering reads storage without an HTTP stack.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple, TypeVar

from auditor import bounded
from auditor.errors import ProbeError
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


class Step(NamedTuple):
    """What the digest walk needs read next: `kind` names the reader's operation, `args` its arguments."""

    kind: str  # manifest, note_layers, legacy_signature, legacy_attestations, bundles, tag_manifest, blob
    args: tuple[Any, ...]


T = TypeVar("T")
DigestSteps = Generator[Step, Any, dict[str, Any]]
READ_ERRORS = (ProbeError, ValueError, OSError)


def digest_facts(repo: str, digest: str, manifest: mf.ManifestFacts, tagset: frozenset[str],
                 sig_repo: str, sig_tags: frozenset[str]) -> DigestSteps:
    """The facts every tag pointing at `digest` shares: an index's platforms (each child's layers
    noted), its signatures and attestations. Written once for the API walker and the storage reader:
    it yields the reads it needs (:class:`Step`) and the reader's driver sends each answer back, or
    throws the read's error in (a platform that cannot be read is an error on that entry)."""
    out: dict[str, Any] = {}
    if manifest.kind == "index":
        platforms = []
        for child in manifest.children:
            entry: dict[str, Any] = {"digest": child.digest, "platform": child.platform}
            try:
                facts = yield Step("manifest", (repo, child.digest))
                yield Step("note_layers", (repo, facts, child.digest))
            except READ_ERRORS as exc:
                entry["error"] = str(exc)
            platforms.append(entry)
        out["platforms"] = platforms
    else:
        yield Step("note_layers", (repo, manifest, digest))
    sig_tag, att_tag = mf.artifact_tag(digest, "sig"), mf.artifact_tag(digest, "att")
    signature = (yield Step("legacy_signature", (sig_repo, sig_tag))) if sig_tag in sig_tags else None
    attestations = (yield Step("legacy_attestations", (sig_repo, att_tag))) if att_tag in sig_tags else []
    bundles = yield Step("bundles", (repo, digest, tagset))
    out.update(mf.artifacts(signature, attestations, bundles))
    return out


def legacy_signature_facts(repo: str, tag: str) -> DigestSteps:
    """The `.sig` image at `tag`: each simple-signing layer with its payload and annotations (reads
    as :class:`Step`s: the tag's manifest, then each payload blob)."""
    entry: dict[str, Any] = {"scheme": "legacy", "tag": tag}
    try:
        manifest, body = yield Step("tag_manifest", (repo, tag))
    except READ_ERRORS as exc:
        entry["error"] = str(exc)
        return entry
    entry["manifest_digest"] = mf.digest_of(body)
    layers = []
    for layer in mf.signature_layers(manifest):
        item = legacy_layer_facts(layer)
        try:
            payload = yield Step("blob", (repo, layer.digest, mf.MAX_SIGNATURE_PAYLOAD))
            item["payload_b64"] = base64.b64encode(payload).decode()
        except READ_ERRORS as exc:
            item["error"] = str(exc)
        layers.append(item)
    entry["layers"] = layers
    return entry


def bundle_referrer_facts(repo: str, entries: list[mf.Descriptor],
                          via: str) -> Generator[Step, Any, list[dict[str, Any]]]:
    """Sigstore bundles among a digest's referrers (`entries`, found `via` the referrers API or the
    tag schema): each bundle manifest and its bundle layer, with the vulnerability summary of a
    vuln attestation (reads as :class:`Step`s: bundle_manifest, bundle_blob)."""
    found: list[dict[str, Any]] = []
    for entry in entries:
        art = entry.artifact_type
        if art and not art.startswith(mf.BUNDLE_PREFIX):
            continue
        item: dict[str, Any] = {"scheme": "bundle", "via": via, "manifest_digest": entry.digest}
        try:
            manifest = yield Step("bundle_manifest", (repo, entry.digest))
            if not (manifest.artifact_type or art).startswith(mf.BUNDLE_PREFIX):
                continue
            item["predicate_type"] = mf.predicate_of(manifest) or mf.predicate_of(entry)
            layer = next((d for d in manifest.layers if d.media_type.startswith(mf.BUNDLE_PREFIX)), None)
            if layer is None:
                item["error"] = "bundle referrer has no bundle layer"
            else:
                data = yield Step("bundle_blob", (repo, layer.digest))
                item["bundle"] = data.decode("utf-8", "replace")
                if item["predicate_type"] == mf.VULN_PREDICATE:
                    item.update(bundle_attestation_facts(item["bundle"]))
        except READ_ERRORS as exc:
            item["error"] = str(exc)
        found.append(item)
    return found


def drive(steps: Generator[Step, Any, T], read: Callable[[Step], Any]) -> T:
    """Run `steps` with a synchronous reader (the storage reader)."""
    try:
        step = next(steps)
        while True:
            try:
                answer = read(step)
            except Exception as exc:  # handed to the walk, which decides; re-raised if it does not
                step = steps.throw(exc)
                continue
            step = steps.send(answer)
    except StopIteration as done:
        return done.value


async def drive_async(steps: Generator[Step, Any, T], read: Callable[[Step], Awaitable[Any]]) -> T:
    """Run `steps` with an asynchronous reader (the API walker)."""
    try:
        step = next(steps)
        while True:
            try:
                answer = await read(step)
            except Exception as exc:  # handed to the walk, which decides; re-raised if it does not
                step = steps.throw(exc)
                continue
            step = steps.send(answer)
    except StopIteration as done:
        return done.value
