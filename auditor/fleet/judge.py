"""Judging a fleet: every target's merged evidence under its own profile, on the control host.

The playbook leaves one directory per inventory host under the evidence directory:

    <evidence>/<host>/reach.json        {"reachable": bool, "msg": str}  (written before anything else)
    <evidence>/<host>/outside.json      outside and content evidence (normal CLI, control host or delegate)
    <evidence>/<host>/inside.json       inside evidence (the gather-only zipapp on the host)
    <evidence>/<host>/inside.json.sig   its signature, when evidence signing is configured

A target is judged exactly as `regaudit evaluate outside.json inside.json --profile P` would judge
it. A target that could not be reached, whose evidence is missing or unreadable, or whose
signature does not verify is an `error` for that target only: the others are judged as usual.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from auditor import bounded
from auditor.checkapi import Check
from auditor.errors import UsageError
from auditor.evidence import EvidenceFile, merge_evidence
from auditor.fleet.inventory import FleetTarget
from auditor.fleet.verify import check_signature
from auditor.model import Severity
from auditor.profile import DEFAULT_PROFILE, Profile, load_profile
from auditor.report import AuditReport
from auditor.runner import RunOptions, Selection
from auditor.session import AuditSession
from auditor.signing import PublicKey

EVIDENCE_FILES = ("outside.json", "inside.json")


@dataclass(frozen=True)
class TargetOutcome:
    """One target's verdict: `judged` with its report, or `error` with the reason."""

    name: str
    state: str
    reason: str = ""
    report: AuditReport | None = None
    profile: str = ""
    groups: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    signature: str = "not configured"

    @property
    def failing(self) -> bool:
        """Fails the fleet gate: an error, or a report whose own gate failed."""
        return self.state == "error" or (self.report is not None and self.report.exit_code != 0)


def resolve_profile(target: FleetTarget, default: str, cache: dict[tuple[str, str | None], Profile]) -> Profile:
    """The target's profile (inventory `regaudit_profile`, else `default`) with its waivers file added."""
    ref = target.profile or default or DEFAULT_PROFILE
    key = (ref, target.waivers)
    if key not in cache:
        cache[key] = _with_waivers(ref, target.waivers) if target.waivers else load_profile(ref)
    return cache[key]


def _with_waivers(ref: str, waivers_path: str) -> Profile:
    try:
        data = bounded.load_yaml_file(waivers_path, what="regaudit_waivers")
    except bounded.InputError as exc:
        raise UsageError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise UsageError(f"regaudit_waivers {waivers_path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("waivers"), list):
        raise UsageError(f"regaudit_waivers {waivers_path}: must be a mapping with a `waivers:` list")
    base = load_profile(ref)
    parent = str(Path(ref).absolute()) if ref.endswith((".yaml", ".yml", ".json")) or "/" in ref else ref
    layer = {"name": str(base.name), "extends": parent, "waivers": data["waivers"]}
    with tempfile.TemporaryDirectory(prefix="regaudit-fleet-") as tmp:
        path = Path(tmp) / "profile.yaml"
        path.write_text(yaml.safe_dump(layer, sort_keys=False), encoding="utf-8")
        try:
            return load_profile(str(path))
        except UsageError as exc:
            raise UsageError(f"regaudit_waivers {waivers_path}: {str(exc).replace(str(path), waivers_path)}") from None


def read_reach(directory: Path) -> tuple[bool, str]:
    """(reachable, message) the playbook recorded; unknown counts as unreachable."""
    path = directory / "reach.json"
    try:
        if not path.exists():
            return False, "the playbook recorded nothing for this host (was it in the play?)"
        data = bounded.load_json_file(path, what="reach record", max_bytes=1024 * 1024)
    except ValueError:
        return False, f"{path} is not JSON"
    if not isinstance(data, dict):
        return False, f"{path} is not a JSON object"
    return bool(data.get("reachable")), str(data.get("msg") or "")


def judge_target(
    target: FleetTarget,
    evidence_dir: Path,
    checks: Mapping[str, Check],
    profile: Profile,
    fail_on: Severity | None,
    verify_key: PublicKey | None,
) -> TargetOutcome:
    """Judge one target; never raises for the target's own problems (they become its `error`)."""
    base = TargetOutcome(target.name, "error", profile=str(profile.name), groups=target.groups)
    directory = evidence_dir / target.name
    reachable, msg = read_reach(directory)
    if not reachable:
        return dataclasses.replace(base, reason=f"unreachable: {msg}" if msg else "unreachable")
    files = [directory / name for name in EVIDENCE_FILES if (directory / name).is_file()]
    if not (directory / "inside.json").is_file():
        return dataclasses.replace(base, reason="no inside evidence was fetched from the host",
                                   evidence=tuple(p.name for p in files))
    signature = "not configured"
    if verify_key is not None:
        try:
            signature = check_signature(directory / "inside.json", verify_key)
        except ValueError as exc:
            return dataclasses.replace(base, reason=f"evidence not trusted: {exc}", signature="invalid",
                                       evidence=tuple(p.name for p in files))
    try:
        evidence = merge_evidence([EvidenceFile.load(p) for p in files])
    except UsageError as exc:
        return dataclasses.replace(base, reason=str(exc), evidence=tuple(p.name for p in files))
    options = RunOptions(fail_on=fail_on or profile.fail_on or Severity.HIGH)
    report = AuditSession(checks, Selection(profile), options).evaluate(evidence).report
    named: dict[str, Any] = {**dict(report.target), "name": target.name}
    report = dataclasses.replace(report, target=named)
    return TargetOutcome(target.name, "judged", report=report, profile=str(profile.name), groups=target.groups,
                         evidence=tuple(p.name for p in files), signature=signature)
