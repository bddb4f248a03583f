"""Helpers shared by the content checks (signatures.*, scans.*): pure, no I/O.

Contract: `tags(ev)` yields the audited tags of `registry.content` (artifact tags are never
listed by the walkers); `subject(tag)` is `repo:tag`; `judge_tags(ev, judge)` runs a per-tag judgement with the shared
handling of unreadable tags and empty registries; `signature_verdicts(ev, params)` verifies
every signature found for every tag once per evidence object and returns {subject: [Verdict]}.
Tags verified with trusted keys only are verified by two threads (`map_in_order`: the signature
arithmetic releases the GIL); keyless (sigstore) verification stays in the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, errored, map_in_order, skipped
from auditor.judge import manifests as mf
from auditor.judge.cosign import (
    INVALID,
    UNVERIFIABLE,
    TrustedKeys,
    Verdict,
    parse_bundle,
    verify_bundle_keyed,
    verify_legacy,
)
from auditor.judge.sigstore_verify import KeylessVerifier

CONTENT = "registry.content"
TRUST = "signatures.trust"
REPORTS = "scans.reports"


def tags(ev: Evidence) -> Iterator[dict[str, Any]]:
    facts = ev[CONTENT]
    yield from facts.get("tags") or []


def subject(tag: Mapping[str, Any]) -> str:
    return f"{tag['repo']}:{tag['tag']}"


def judge_tags(ev: Evidence, judge: Callable[[str, dict[str, Any]], Iterator[Outcome]]) -> Iterator[Outcome]:
    """`judge(subject, tag)` on every tag the walk could read (it has a digest); an unreadable tag is
    `error`, and a registry with no tags one `skip`."""
    any_tag = False
    for tag in tags(ev):
        any_tag = True
        where = subject(tag)
        if tag.get("error") or not tag.get("digest"):
            yield errored(where, f"could not read the tag: {tag.get('error')}", observed={"digest": tag.get("digest")})
        else:
            yield from judge(where, tag)
    if not any_tag:
        yield skipped("-", empty_reason(ev[CONTENT]))


def empty_reason(facts: Mapping[str, Any]) -> str:
    """Why a walk found no tag: an empty registry is a state (skip), not an error."""
    if facts.get("empty"):
        return f"the registry holds no tags yet ({facts['empty']})"
    if not facts.get("repositories"):
        return f"the registry holds no repository yet ({facts.get('source', 'walk')}: nothing pushed)"
    return f"the registry's {facts.get('repositories')} repositories hold no tag"


def hosts(ev: Evidence, params: Params) -> list[str]:
    return [*ev[CONTENT].get("hosts", []), *(str(h) for h in params.get("host_aliases") or [])]


def found_signatures(tag: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Signature entries that exist (discovery errors with nothing found are left out)."""
    return [s for s in tag.get("signatures") or []
            if not (s.get("error") and s.get("scheme") == "bundle" and not s.get("manifest_digest"))
            and not (s.get("scheme") == "bundle" and s.get("predicate_type") not in (None, "", mf.SIGN_PREDICATE))]


def discovery_errors(tag: Mapping[str, Any]) -> list[str]:
    return [str(s["error"]) for s in tag.get("signatures") or []
            if s.get("error") and s.get("scheme") == "bundle" and not s.get("manifest_digest")]


class Verification:
    """Trusted material loaded once; verifies signature entries of the walker's shape."""

    def __init__(self, ev: Evidence, params: Params) -> None:
        trust = ev[TRUST]
        pems = [(k["source"], k["pem"]) for k in trust.get("keys") or []]
        pems += [(f"profile trusted_keys[{i}]", str(p)) for i, p in enumerate(params.get("trusted_keys") or [])]
        self.keys = TrustedKeys.from_pems(pems)
        self.key_errors = [*trust.get("errors", []), *self.keys.errors]
        self.identities = list(params.get("keyless_identities") or [])
        self.trusted_root = trust.get("trusted_root_json")
        self._keyless: KeylessVerifier | None = None
        self.hosts = hosts(ev, params)

    def keyless(self) -> KeylessVerifier:
        if self._keyless is None:
            self._keyless = KeylessVerifier(self.trusted_root, self.identities)
        return self._keyless

    def verify(self, entry: Mapping[str, Any], repo: str, digest: str) -> list[Verdict]:
        if entry.get("scheme") == "legacy":
            if entry.get("error"):
                return [Verdict(UNVERIFIABLE, f"signature image {entry.get('tag')}: {entry['error']}", scheme="legacy")]
            layers = entry.get("layers") or []
            if not layers:
                return [Verdict(INVALID, f"signature image {entry.get('tag')} has no simple-signing layer",
                                scheme="legacy")]
            return [verify_legacy(layer, digest, repo, self.hosts, self.keys) for layer in layers]
        if entry.get("error"):
            return [Verdict(UNVERIFIABLE, f"bundle {entry.get('manifest_digest', '')}: {entry['error']}",
                            scheme="sigstore-bundle")]
        return [self.verify_bundle(str(entry.get("bundle", "")), digest)]

    def verify_bundle(self, text: str, digest: str) -> Verdict:
        bundle, error = parse_bundle(text)
        if bundle is None:
            return Verdict(INVALID, error, scheme="sigstore-bundle")
        material = bundle.get("verificationMaterial") or {}
        if isinstance(material, dict) and material.get("publicKey") is not None:
            return verify_bundle_keyed(bundle, digest, self.keys)
        return self.keyless().verify(text, digest)

    def verify_tag(self, tag: Mapping[str, Any]) -> list[Verdict]:
        """Verdicts of every signature found for a readable tag."""
        verdicts: list[Verdict] = []
        for entry in found_signatures(tag):
            verdicts += self.verify(entry, str(tag["repo"]), str(tag["digest"]))
        return verdicts


def keyless(entry: Mapping[str, Any]) -> bool:
    """Is this entry a bundle `Verification.verify` hands to the keyless (sigstore) verifier?"""
    if entry.get("scheme") == "legacy" or entry.get("error"):
        return False
    bundle, _error = parse_bundle(str(entry.get("bundle", "")))
    if bundle is None:
        return False
    material = bundle.get("verificationMaterial") or {}
    return not (isinstance(material, dict) and material.get("publicKey") is not None)


def signature_verdicts(ev: Evidence, params: Params) -> dict[str, list[Verdict]]:
    """{repo:tag: verdicts of every signature found}, computed once per (evidence, params)."""
    cached = ev.memo.get("signature_verdicts")
    if cached is not None and cached[0] == params:
        return cached[1]
    verifier = Verification(ev, params)
    readable = [tag for tag in tags(ev) if not tag.get("error") and tag.get("digest")]
    # sigstore's verifier is built lazily and not known to be thread-safe: tags with a keyless bundle
    # are verified here; the others (key-signed, the common case) by two threads.
    keyed = [tag for tag in readable if not any(keyless(entry) for entry in found_signatures(tag))]
    verdicts = dict(zip(map(id, keyed), map_in_order(verifier.verify_tag, keyed), strict=True))
    out: dict[str, list[Verdict]] = {}
    for tag in readable:
        found = verdicts.get(id(tag))
        out[subject(tag)] = found if found is not None else verifier.verify_tag(tag)
    ev.memo["signature_verdicts"] = (dict(params), out)
    return out
