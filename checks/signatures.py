"""signatures.* checks: every tag carries a cosign signature, and it verifies (CATALOG.md, content)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.cosign import UNTRUSTED, UNVERIFIABLE, VALID
from auditor.model import Severity, Vantage

from ._content import CONTENT, TRUST, discovery_errors, found_signatures, judge_tags, signature_verdicts

GUIDE = "Image Signing with Cosign"
REFS = ("NIST SP 800-190 4.1.5 (image trust: signatures)", "CIS Docker Benchmark 4.5 (content trust)")


def _summary(entry: dict) -> dict:
    keep = ("scheme", "tag", "via", "manifest_digest", "predicate_type", "error")
    return {k: entry[k] for k in keep if entry.get(k)}


@check(
    id="signatures.present",
    title="Every tag has a cosign signature",
    severity=Severity.HIGH,
    area="signatures",
    vantage=Vantage.CONTENT,
    needs=(CONTENT,),
    guide=GUIDE,
    rationale="An unsigned image cannot be told apart from one an attacker pushed with stolen push rights.",
    passes_when="every tag (the index digest for multi-platform tags) has a cosign signature: the "
    "`sha256-<hex>.sig` tag, or a sigstore bundle referrer (referrers API or its `sha256-<hex>` tag schema)",
    remediation="Sign every pushed digest in CI: `cosign sign --key cosign.key <registry>/<repo>@<digest>`.",
    generator="cosign-ci",
    references=REFS,
    # Not read by the check itself: `regaudit watch` gives a new push this long to be signed and scanned
    # before a failing verdict counts (cosign signs after the push, the scan job runs after it).
    params={"grace_minutes": 10.0},
)
def signatures_present(ev: Evidence, params: Params) -> Iterator[Outcome]:
    def judge(where: str, tag: dict[str, Any]) -> Iterator[Outcome]:
        digest = tag["digest"]
        sigs = found_signatures(tag)
        observed: dict = {"digest": digest, "signatures": [_summary(s) for s in sigs]}
        if sigs:
            kinds = sorted({str(s.get("scheme")) for s in sigs})
            yield passed(where, f"{len(sigs)} signature(s): {', '.join(kinds)}",
                         observed={"digest": digest, "schemes": kinds})
        elif discovery_errors(tag):
            yield errored(where, f"no legacy signature, and referrers could not be read: {discovery_errors(tag)[0]}",
                          observed=observed)
        else:
            yield failed(where, f"unsigned: no cosign signature for {digest}", observed=observed,
                         expected="a .sig tag or a sigstore bundle referrer for this digest")

    yield from judge_tags(ev, judge)


@check(
    id="signatures.valid",
    title="Every signature verifies with a trusted key or identity",
    severity=Severity.CRITICAL,
    area="signatures",
    vantage=Vantage.CONTENT,
    needs=(CONTENT, TRUST),
    guide="Enforcing Signature Verification",
    rationale="A signature only means something when it verifies with a key you trust and names this exact "
    "digest and repository: a replayed signature for another image, or one made with another key, is none.",
    passes_when="for every signed tag, a signature verifies with a trusted public key (or the keyless identity "
    "policy: issuer + subject), and its payload names this exact digest and repository",
    remediation="Re-sign the digest with the trusted key (`cosign sign --key cosign.key <repo>@<digest>`), remove "
    "signatures made with other keys, and give the auditor every trusted key with --cosign-key.",
    generator="cosign-ci",
    references=REFS,
    params={"keyless_identities": [], "host_aliases": [], "trusted_keys": []},
)
def signatures_valid(ev: Evidence, params: Params) -> Iterator[Outcome]:
    verdicts = signature_verdicts(ev, params)

    def judge(where: str, tag: dict[str, Any]) -> Iterator[Outcome]:
        digest = tag["digest"]
        found = verdicts.get(where, [])
        observed = {"digest": digest, "verdicts": [v.to_json() for v in found]}
        if not found:
            yield skipped(where, f"unsigned ({digest}): reported by signatures.present")
            return
        valid = [v for v in found if v.status == VALID]
        if valid:
            yield passed(where, valid[0].reason.replace(digest, "the tag's digest"),
                         observed={"digest": digest, "scheme": valid[0].scheme, "key": valid[0].key})
            return
        decided = [v for v in found if v.status != UNVERIFIABLE]
        if not decided:
            yield errored(where, f"{digest}: cannot verify: {found[0].reason}", observed=observed)
            return
        if all(v.status == UNTRUSTED for v in decided):
            message = f"{digest}: signed by an untrusted key: {decided[0].reason}"
        else:
            message = f"{digest}: signature invalid: " + "; ".join(sorted({v.reason for v in decided}))
        yield failed(where, message, observed=observed,
                     expected="a signature by a trusted key (or identity) naming this digest and repository")

    yield from judge_tags(ev, judge)
