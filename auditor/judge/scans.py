"""Vulnerability scan facts (pure): Trivy JSON reports, .trivyignore rules, cosign vuln attestations.

Contract:
- `scan_filename(repo, tag)` is the guide's `${repo////_}_${tag}.json`.
- `compact_report(doc, mtime)` keeps of a report CreatedAt (or None), mtime, ArtifactName,
  RepoTags, RepoDigests and the vulnerabilities (id, severity, package, PURL, path); reading the
  directory is auditor.content.scandir's job (I/O, probe side).
- `parse_trivyignore(text)` / `parse_trivyignore_yaml(text)` return rules {id, expired_at,
  paths, purls, statement} as trivy's pkg/result/ignore.go reads them.
- `ignored_by(vuln, rules, now)` (pure) names the rule that ignores `vuln` at `now`, or None.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from auditor.judge.parse import load_yaml

MAX_REPORT = 64 * 1024 * 1024
_FRACTION = re.compile(r"(\.\d{6})\d+")


def scan_filename(repo: str, tag: str) -> str:
    return f"{repo.replace('/', '_')}_{tag}.json"


def parse_time(text: Any) -> dt.datetime | None:
    """RFC 3339 with any fraction length (Go writes nanoseconds), as an aware datetime."""
    if not isinstance(text, str) or not text:
        return None
    value = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def compact_vulns(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for result in report.get("Results") or []:
        if not isinstance(result, dict):
            continue
        for vuln in result.get("Vulnerabilities") or []:
            if not isinstance(vuln, dict):
                continue
            ident: dict[str, Any] = vuln["PkgIdentifier"] if isinstance(vuln.get("PkgIdentifier"), dict) else {}
            item = {
                "id": str(vuln.get("VulnerabilityID", "")),
                "severity": str(vuln.get("Severity", "UNKNOWN")).upper(),
                "pkg": str(vuln.get("PkgName", "")),
                "installed": str(vuln.get("InstalledVersion", "")),
            }
            if ident.get("PURL"):
                item["purl"] = str(ident["PURL"])
            if vuln.get("PkgPath"):
                item["path"] = str(vuln["PkgPath"])
            out.append(item)
    return out


def compact_report(doc: Any, mtime: float | None) -> dict[str, Any]:
    """The facts of one Trivy JSON report the checks judge."""
    if not isinstance(doc, dict) or ("Results" not in doc and "SchemaVersion" not in doc):
        return {"parse_error": "not a Trivy JSON report (no SchemaVersion/Results)"}
    meta: dict[str, Any] = doc["Metadata"] if isinstance(doc.get("Metadata"), dict) else {}
    return {
        "schema_version": doc.get("SchemaVersion"),
        "created_at": doc.get("CreatedAt") if isinstance(doc.get("CreatedAt"), str) else None,
        "mtime": dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat() if mtime is not None else None,
        "artifact_name": doc.get("ArtifactName"),
        "repo_tags": [str(t) for t in meta.get("RepoTags") or []],
        "repo_digests": [str(d) for d in meta.get("RepoDigests") or []],
        "vulnerabilities": compact_vulns(doc),
    }


def parse_trivyignore(text: str) -> list[dict[str, Any]]:
    """`.trivyignore`: one id per line, optional `exp:YYYY-MM-DD`, `#` comments."""
    rules = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        rule: dict[str, Any] = {"id": fields[0], "source": ".trivyignore"}
        for extra in fields[1:]:
            if extra.startswith("exp:"):
                rule["expired_at"] = extra[4:]
        rules.append(rule)
    return rules


def parse_trivyignore_yaml(text: str) -> list[dict[str, Any]]:
    """`.trivyignore.yaml`: vulnerabilities: [{id, paths, purls, expired_at, statement}]."""
    doc = load_yaml(text, ".trivyignore.yaml") or {}
    if not isinstance(doc, dict):
        raise ValueError("top level is not a mapping")
    rules = []
    entries = doc.get("vulnerabilities") or []
    if not isinstance(entries, list):
        raise ValueError("vulnerabilities is not a list")
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        rule: dict[str, Any] = {"id": str(entry["id"]), "source": ".trivyignore.yaml"}
        if entry.get("expired_at") is not None:
            rule["expired_at"] = str(entry["expired_at"])
        for key in ("paths", "purls"):
            value = entry.get(key)
            if value:
                rule[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if entry.get("statement"):
            rule["statement"] = str(entry["statement"])
        rules.append(rule)
    return rules


def rules_from_param(values: Iterable[Any]) -> list[dict[str, Any]]:
    """The profile's `ignore` param: ids, or objects shaped like .trivyignore.yaml entries."""
    rules = []
    for value in values:
        if isinstance(value, str):
            rules.append({"id": value, "source": "profile"})
        elif isinstance(value, dict) and value.get("id"):
            rule = {k: value[k] for k in ("id", "expired_at", "paths", "purls", "statement") if k in value}
            rule["expired_at"] = str(rule["expired_at"]) if "expired_at" in rule else None
            if rule["expired_at"] is None:
                del rule["expired_at"]
            rules.append({**rule, "source": "profile"})
    return rules


def _expired(rule: Mapping[str, Any], now: dt.datetime) -> bool:
    text = rule.get("expired_at")
    if not text:
        return False
    moment = parse_time(str(text))
    if moment is None:
        try:
            day = dt.date.fromisoformat(str(text)[:10])
        except ValueError:
            return True  # an unreadable expiry does not ignore anything
        moment = dt.datetime.combine(day, dt.time(), dt.UTC)
    return now >= moment


def _purl_matches(pattern: str, purl: str) -> bool:
    if pattern == purl:
        return True
    return pattern.split("?", 1)[0] == purl.split("?", 1)[0] and "?" not in pattern


def ignored_by(vuln: Mapping[str, Any], rules: Iterable[Mapping[str, Any]],
               now: dt.datetime) -> Mapping[str, Any] | None:
    """The first unexpired rule that ignores `vuln` (id, then paths/purls when the rule has them)."""
    for rule in rules:
        if rule.get("id") != vuln.get("id") or _expired(rule, now):
            continue
        paths = rule.get("paths") or []
        if paths and not any(fnmatch.fnmatchcase(str(vuln.get("path", "")), p) for p in paths):
            continue
        purls = rule.get("purls") or []
        if purls and not any(_purl_matches(p, str(vuln.get("purl", ""))) for p in purls):
            continue
        return rule
    return None
