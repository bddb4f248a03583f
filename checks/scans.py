"""scans.* checks: every tag has a fresh vulnerability scan of its current digest, without HIGH/CRITICAL.

A tag's scan is the Trivy JSON report named as the guide's scan script names it
(`${repo////_}_${tag}.json` in --scan-dir; a file name two tags share is attributed through the
report's ArtifactName/RepoTags, else reported as a collision), or, when there is none, a cosign
vuln attestation (`cosign attest --type vuln`) whose signature verifies with a trusted key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.cosign import VALID, split_reference
from auditor.judge.scans import ignored_by, parse_time, rules_from_param, scan_filename
from auditor.judge.shapes import ScansReports
from auditor.model import Severity, Vantage

from ._content import CONTENT, REPORTS, TRUST, Verification, judge_tags, subject, tags

GUIDE = "Vulnerability Scanning"
NEEDS = (CONTENT, REPORTS, TRUST)
REFS = ("NIST SP 800-190 4.1.1 (image vulnerabilities)", "CIS Docker Benchmark 4.4 (scan and rebuild images)")


@dataclass
class Scan:
    source: str
    created_at: dt.datetime | None
    created_from: str
    digests: list[str]
    vulns: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "created_at": self.created_at.isoformat() if self.created_at else None,
                "created_from": self.created_from, "repo_digests": self.digests}


@dataclass
class Found:
    scan: Scan | None = None
    problem: str = ""      # why there is no usable scan (fail)
    undecided: str = ""    # why we cannot tell (error)


def _ref_names(reference: str) -> tuple[str, str]:
    """(repository path, tag) of `host/repo:tag`."""
    _, path = split_reference(reference)
    last = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return path, last.split(":", 1)[1] if ":" in last else ""


def _names_tag(report: Mapping[str, Any], repo: str, tag: str) -> bool:
    refs = [str(report.get("artifact_name") or ""), *report.get("repo_tags", [])]
    return any(_ref_names(r) == (repo, tag) for r in refs if r)


def _digests(values: list[str]) -> list[str]:
    return [v.rsplit("@", 1)[1] if "@" in v else v for v in values]


def _attestation_scan(tag: Mapping[str, Any], verifier: Verification) -> tuple[Scan | None, str]:
    reasons = []
    digest = str(tag["digest"])
    for att in tag.get("attestations") or []:
        if att.get("error"):
            reasons.append(str(att["error"]))
            continue
        if att.get("scheme") == "legacy-att":
            verdict = verifier.verify_bundle(_envelope_as_bundle(att.get("envelope", "")), digest)
        else:
            verdict = verifier.verify_bundle(str(att.get("bundle", "")), digest)
        if verdict.status != VALID:
            reasons.append(f"vuln attestation not trusted: {verdict.reason}")
            continue
        created = parse_time(att.get("scan_finished"))
        scan = Scan("cosign vuln attestation", created, "scanFinishedOn", list(att.get("subject_digests") or []),
                    list(att.get("vulnerabilities") or []))
        return scan, ""
    return None, "; ".join(reasons)


def _envelope_as_bundle(envelope: str) -> str:
    import json

    from auditor.judge.parse import load_json

    try:
        env = load_json(envelope, "attestation envelope")
    except ValueError:
        return ""
    return json.dumps({"verificationMaterial": {"publicKey": {"hint": ""}}, "dsseEnvelope": env})


def resolve(ev: Evidence) -> dict[str, Found]:
    """{repo:tag: Found} for every readable tag (computed once per evidence object)."""
    cached = ev.memo.get("resolved_scans")
    if cached is not None:
        return cached
    reports_facts = ev.typed(REPORTS, ScansReports)
    reports: dict[str, Any] = reports_facts.get("reports") or {}
    scan_dir = reports_facts.get("scan_dir")
    verifier = Verification(ev, {})
    readable = [t for t in tags(ev) if not t.get("error") and t.get("digest")]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for tag in readable:
        by_file.setdefault(scan_filename(tag["repo"], tag["tag"]), []).append(tag)
    out: dict[str, Found] = {}
    for name, group in by_file.items():
        report = reports.get(name)
        owners = group
        if report is not None and len(group) > 1:
            owners = [t for t in group if _names_tag(report, t["repo"], t["tag"])]
        for tag in group:
            where = subject(tag)
            found = Found()
            others = [subject(t) for t in group if t is not tag]
            if report is None:
                found.problem = f"no report {name} in {scan_dir}" if scan_dir else "no --scan-dir given"
                if scan_dir is None:
                    found.undecided = "no --scan-dir given and no trusted vuln attestation"
            elif report.get("parse_error"):
                found.problem = f"report {name} unreadable: {report['parse_error']}"
            elif len(group) > 1 and len(owners) != 1:
                found.undecided = (f"scan file name {name} collides: {where} and {', '.join(others)} map to it "
                                   "and its ArtifactName does not tell whose it is")
            elif tag not in owners:
                found.problem = (f"no report of its own: {name} collides with {', '.join(others)}, whose "
                                 "report it is (ArtifactName)")
            else:
                created = parse_time(report.get("created_at"))
                source = "CreatedAt"
                if created is None:
                    created, source = parse_time(report.get("mtime")), "file mtime"
                found.scan = Scan(f"trivy report {name}", created, source,
                                  _digests(list(report.get("repo_digests") or [])),
                                  list(report.get("vulnerabilities") or []))
            if found.scan is None:
                scan, why = _attestation_scan(tag, verifier)
                if scan is not None:
                    found = Found(scan)
                elif why:
                    found.problem = f"{found.problem}; {why}" if found.problem else why
                    if found.undecided and "--scan-dir" in found.undecided:
                        found.undecided = ""
            out[where] = found
    ev.memo["resolved_scans"] = out
    return out


def _judge_scanned(
    ev: Evidence, judge: Callable[[str, dict[str, Any], Scan], Iterator[Outcome]]
) -> Iterator[Outcome]:
    """`judge` on every tag that has a scan; an unreadable tag is error, an unscanned one skip
    (scans.present reports it), and an empty registry one skip."""
    found = resolve(ev)

    def scanned(where: str, tag: dict[str, Any]) -> Iterator[Outcome]:
        scan = found[where].scan
        if scan is None:
            yield skipped(where, "no scan: reported by scans.present")
        else:
            yield from judge(where, tag, scan)

    yield from judge_tags(ev, scanned)


@check(
    id="scans.present",
    title="Every tag has a vulnerability scan",
    severity=Severity.HIGH,
    area="scans",
    vantage=Vantage.CONTENT,
    needs=NEEDS,
    guide=GUIDE,
    rationale="An image nobody scanned may ship known-exploitable packages.",
    passes_when="every tag has a Trivy JSON report in the scan directory named as the guide's scan script names "
    "it (`${repo////_}_${tag}.json`), or a cosign vuln attestation that verifies with a trusted key",
    remediation="Run the nightly scan script over every repository and tag (it pages _catalog), writing "
    "`trivy image --format json` reports into the scan directory.",
    generator="scan-script",
    references=REFS,
)
def scans_present(ev: Evidence, params: Params) -> Iterator[Outcome]:
    resolved = resolve(ev)

    def judge(where: str, tag: dict[str, Any]) -> Iterator[Outcome]:
        found = resolved[where]
        observed: dict[str, Any] = {"digest": tag.get("digest")}
        if found.scan is not None:
            observed["source"] = found.scan.source
            yield passed(where, found.scan.source, observed=observed)
        elif found.undecided:
            yield errored(where, f"cannot decide: {found.undecided}", observed=observed)
        else:
            yield failed(where, f"{tag['digest']}: no scan: {found.problem}", observed=observed,
                         expected=scan_filename(tag["repo"], tag["tag"]) + " or a trusted vuln attestation")

    yield from judge_tags(ev, judge)


def _rescan_notes(ev: Evidence) -> Callable[[str], str]:
    """A message suffix per tag saying why --rescan-stale did not refresh its report ("" if not asked)."""
    rescan = ev.typed(REPORTS, ScansReports).get("rescan")
    if not isinstance(rescan, dict):
        return lambda where: ""
    if not rescan.get("ran"):
        note = f" (--rescan-stale could not run: {rescan.get('reason')})"
        return lambda where: note
    failures = {f"{t['repo']}:{t['tag']}": str(t.get("error", "")) for t in rescan.get("tags") or []
                if t.get("result") != "rescanned"}
    return lambda where: f" (--rescan-stale: {failures[where]})" if where in failures else ""


@check(
    id="scans.fresh",
    title="Scans are recent",
    severity=Severity.MEDIUM,
    area="scans",
    vantage=Vantage.CONTENT,
    needs=NEEDS,
    guide=GUIDE,
    rationale="New CVEs are published daily: a scan older than the nightly job's period misses them.",
    passes_when="the scan (CreatedAt; the report file's mtime when absent) is younger than max_age_hours "
    "(48h: a nightly job with slack; strict: 24h)",
    remediation="Run the scan script nightly (systemd timer or cron) and alert when it fails.",
    generator="scan-script",
    references=REFS,
    params={"max_age_hours": 48},
)
def scans_fresh(ev: Evidence, params: Params) -> Iterator[Outcome]:
    limit = float(params["max_age_hours"])
    rescan = _rescan_notes(ev)

    def judge(where: str, tag: dict[str, Any], scan: Scan) -> Iterator[Outcome]:
        observed: dict[str, Any] = {"digest": tag["digest"], "source": scan.source,
                                    "created_at": scan.describe()["created_at"],
                                    "created_from": scan.created_from}
        if scan.created_at is None:
            yield errored(where, f"{scan.source}: no CreatedAt and no usable mtime", observed=observed)
            return
        age = (ev.now - scan.created_at).total_seconds() / 3600
        observed["age_hours"] = round(age, 2)
        if age > limit:
            yield failed(where, f"{tag['digest']}: scan is {age:.1f}h old ({scan.created_from}), more than "
                         f"{limit:g}h{rescan(where)}", observed=observed, expected=f"<= {limit:g}h")
        else:
            yield passed(where, f"scan is {max(age, 0):.1f}h old ({scan.created_from})", observed=observed)

    yield from _judge_scanned(ev, judge)


@check(
    id="scans.digest-match",
    title="Scans are of the tag's current digest",
    severity=Severity.HIGH,
    area="scans",
    vantage=Vantage.CONTENT,
    needs=NEEDS,
    guide="beyond the guide (re-pushed tags)",
    rationale="A tag re-pushed after its scan points at an image nobody scanned; the old report is worthless.",
    passes_when="the scan's RepoDigests (attestation subject) name the digest the tag points to now (the index "
    "digest for a multi-platform tag)",
    remediation="Rescan re-pushed tags (scan by digest: `trivy image <repo>@<digest>`), or scan on every push.",
    generator="scan-script",
    references=REFS,
)
def scans_digest_match(ev: Evidence, params: Params) -> Iterator[Outcome]:

    def judge(where: str, tag: dict[str, Any], scan: Scan) -> Iterator[Outcome]:
        digest = str(tag["digest"])
        observed = {"digest": digest, "source": scan.source, "repo_digests": scan.digests}
        if digest in scan.digests:
            yield passed(where, f"{scan.source} names the tag's digest", observed=observed)
        elif not scan.digests:
            yield failed(where, f"{digest}: {scan.source} names no digest (RepoDigests empty): it cannot be "
                         "tied to this image", observed=observed, expected=digest)
        else:
            yield failed(where, f"{digest}: {scan.source} is of {', '.join(scan.digests)}: the tag was "
                         "re-pushed after the scan", observed=observed, expected=digest)

    yield from _judge_scanned(ev, judge)


@check(
    id="scans.severity",
    title="No HIGH or CRITICAL vulnerabilities",
    severity=Severity.HIGH,
    area="scans",
    vantage=Vantage.CONTENT,
    needs=NEEDS,
    guide="trivy --severity HIGH,CRITICAL --exit-code 1",
    rationale="HIGH and CRITICAL vulnerabilities are the ones the guide's scan gate blocks on.",
    passes_when="the scan lists no vulnerability of the profile's severities (HIGH, CRITICAL) outside the ignore "
    "list (.trivyignore / .trivyignore.yaml in the scan directory, and the profile's `ignore`; expired "
    "entries do not ignore)",
    remediation="Rebuild on a patched base image and redeploy; accept a risk only with an expiring ignore entry.",
    generator="scan-script",
    references=REFS,
    params={"severities": ["HIGH", "CRITICAL"], "ignore": []},
)
def scans_severity(ev: Evidence, params: Params) -> Iterator[Outcome]:
    wanted = {str(s).upper() for s in params["severities"]}
    rules = [*(ev.typed(REPORTS, ScansReports).get("ignore") or []), *rules_from_param(params.get("ignore") or [])]

    def judge(where: str, tag: dict[str, Any], scan: Scan) -> Iterator[Outcome]:
        counts: dict[str, int] = {}
        findings: list[str] = []
        ignored: list[str] = []
        seen: set[tuple[str, str, str]] = set()
        for vuln in scan.vulns:
            key = (str(vuln.get("id")), str(vuln.get("pkg")), str(vuln.get("installed")))
            if vuln.get("severity") not in wanted or key in seen:
                continue
            seen.add(key)
            rule = ignored_by(vuln, rules, ev.now)
            if rule is not None:
                ignored.append(f"{vuln['id']} ({rule.get('source')})")
                continue
            counts[str(vuln["severity"])] = counts.get(str(vuln["severity"]), 0) + 1
            findings.append(f"{vuln['id']} {vuln['severity']} {vuln.get('pkg')}")
        observed: dict[str, Any] = {"digest": tag["digest"], "source": scan.source, "counts": counts}
        if findings:
            observed["vulnerabilities"] = findings[:50]
        if ignored:
            observed["ignored"] = ignored[:50]
        expected = {s: 0 for s in sorted(wanted)}
        if findings:
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            yield failed(where, f"{tag['digest']}: {summary}: {', '.join(findings[:5])}"
                         + (" ..." if len(findings) > 5 else ""), observed=observed, expected=expected)
        else:
            note = f" ({len(ignored)} ignored)" if ignored else ""
            yield passed(where, f"no {'/'.join(sorted(wanted))} vulnerabilities{note}", observed=observed)

    yield from _judge_scanned(ev, judge)
