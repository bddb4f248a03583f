"""admission.policy: a Kyverno ClusterPolicy in Enforce mode verifies this registry's images with a
trusted key, judged on the `admission.manifests` facts.

Kyverno matches imageReferences with wildcards (`*` any run of characters, `?` one): a pattern
covers the registry when it matches sample references to it (a nested repository, a tag, a
digest). "registry.example.com/" matches nothing (docs/guide-notes.md#kyverno-image-references). An
attestor binds the trusted key when
every way to satisfy it needs one: all its entries are trusted keys, or `count` is unset (every entry
must verify) and one entry is a trusted key. Attestors are AND-ed, so one binding attestor suffices.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed
from auditor.model import Severity, Vantage

PROBE = "admission.manifests"
SAMPLE_PATHS = ("myapp/backend:v1.2.0", "library/alpine@sha256:" + "0" * 64, "team/group/image:latest")


def samples(host: str) -> list[str]:
    return [f"{host}/{path}" for path in SAMPLE_PATHS]


def covers(patterns: Sequence[str], host: str) -> bool:
    """Whether the imageReferences match every sample reference to `host`."""
    return all(any(fnmatch.fnmatchcase(image, p) for p in patterns) for image in samples(host))


def failure_action(policy: Mapping[str, Any], rule: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """Effective action: verifyImages[].failureAction, rule validate.failureAction, spec's, else Audit."""
    for value in (entry.get("failure_action"), rule.get("validate_failure_action"),
                  policy.get("validation_failure_action")):
        if value:
            return str(value)
    return "Audit"


def _entry_trusted(item: Mapping[str, Any], trusted: set[str]) -> bool:
    prints = item.get("fingerprints") or []
    return item.get("kind") == "keys" and bool(prints) and all(p in trusted for p in prints)


def binds_trusted_key(attestors: Sequence[Mapping[str, Any]], trusted: set[str]) -> bool:
    for attestor in attestors:
        entries = list(attestor.get("entries") or [])
        if not entries:
            continue
        count = attestor.get("count")
        if all(_entry_trusted(e, trusted) for e in entries):
            return True
        if (count is None or int(count) >= len(entries)) and any(_entry_trusted(e, trusted) for e in entries):
            return True
    return False


@check(
    id="admission.policy",
    title="Kubernetes admission enforces cosign signatures on this registry's images",
    severity=Severity.MEDIUM,
    area="admission",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide="Enforcing Signature Verification (Kyverno ClusterPolicy)",
    rationale="Signing is pointless if nothing refuses unsigned images: a policy in Audit mode, a pattern "
    "that matches nothing (\"registry.example.com/\") or an untrusted key admits any image.",
    passes_when="a Kyverno ClusterPolicy (kyverno.io/v1 or v2beta1) whose effective failure action is "
    "Enforce has verifyImages whose imageReferences match this registry's images (\"<host>/*\") and whose "
    "attestors require a trusted key (--cosign-key, compared by DER public key)",
    remediation="Apply a ClusterPolicy with validationFailureAction: Enforce, imageReferences: "
    "[\"<registry host>/*\"] and attestors[].entries[].keys.publicKeys set to your cosign.pub.",
    generator="kyverno-policy",
    references=("NIST SP 800-190 4.1.5 (image trust)", "CIS Kubernetes Benchmark 5.5.1 (image provenance)"),
)
def admission_policy(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    subject = f"manifests {facts.get('directory')}"
    hosts = [str(h) for h in facts.get("registry_hosts") or []]
    trusted = {p for k in facts.get("trusted_keys") or [] for p in k.get("fingerprints") or []}
    if not hosts:
        yield errored(subject, "cannot tell this registry's host name (give the registry URL, or set http.host)")
        return
    if not trusted:
        problems = [e for k in facts.get("trusted_keys") or [] for e in k.get("errors") or []]
        yield errored(subject, "no trusted cosign public key to compare with (--cosign-key)"
                      + (f": {'; '.join(problems)}" if problems else ""),
                      observed={"trusted_keys": facts.get("trusted_keys")})
        return
    candidates: list[dict[str, Any]] = []
    for policy in facts.get("policies") or []:
        for rule in policy.get("rules") or []:
            for entry in rule.get("verify_images") or []:
                action = failure_action(policy, rule, entry)
                row = {"policy": f"{policy.get('kind')}/{policy.get('name')} ({policy.get('api_version')})",
                       "file": policy.get("file"), "rule": rule.get("name"),
                       "image_references": entry.get("image_references"), "failure_action": action,
                       "match_kinds": rule.get("match_kinds"), "has_exclude": rule.get("has_exclude"),
                       "failure_action_overrides": policy.get("failure_action_overrides")}
                why = []
                if policy.get("kind") != "ClusterPolicy":
                    why.append(f"a namespaced Policy (namespace {policy.get('namespace')}) covers one namespace only")
                if action.lower() != "enforce":
                    why.append(f"failure action is {action}, not Enforce")
                uncovered = [h for h in hosts if not covers(entry.get("image_references") or [], h)]
                if len(uncovered) == len(hosts):
                    why.append(f"imageReferences {entry.get('image_references')} do not match {hosts[0]}'s images "
                               f"(e.g. {samples(hosts[0])[0]}; write \"{hosts[0]}/*\")")
                if not binds_trusted_key(entry.get("attestors") or [], trusted):
                    key_errors = [e for a in entry.get("attestors") or [] for i in a.get("entries") or []
                                  for e in i.get("errors") or []]
                    why.append("no attestor requires a trusted key" + (f" ({'; '.join(key_errors)})" if key_errors
                                                                         else ""))
                row["problems"] = why
                candidates.append(row)
    good = [c for c in candidates if not c["problems"]]
    observed = {"policies_checked": candidates, "registry_hosts": hosts, "kinds": facts.get("kinds"),
                "parse_errors": facts.get("errors")}
    expected = f"ClusterPolicy, Enforce, imageReferences matching \"{hosts[0]}/*\", attestor with a trusted key"
    if good:
        first = good[0]
        yield passed(subject, f"{first['policy']} rule {first['rule']} enforces signatures on "
                     f"{first['image_references']} with a trusted key", observed=observed, expected=expected)
    elif candidates:
        summary = "; ".join(f"{c['policy']} rule {c['rule']}: {', '.join(c['problems'])}" for c in candidates)
        yield failed(subject, f"no policy enforces this registry's signatures: {summary}", observed=observed,
                     expected=expected)
    else:
        yield failed(subject, f"no Kyverno policy with verifyImages among {facts.get('files')} manifest file(s)",
                     observed=observed, expected=expected)
