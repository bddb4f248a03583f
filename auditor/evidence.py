"""The evidence file: every probe's recorded outcome, the target and the time it was judged at."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor import __version__, bounded
from auditor.checkapi import ProbeRecord
from auditor.errors import UsageError
from auditor.jsonstream import write_json
from auditor.model import JSON

EVIDENCE_FORMAT = "regaudit-evidence/1"
GATHER_ARTIFACT = "regaudit-gather"  # the zipapp's name in the `gathered_by` field of its evidence
MAX_EVIDENCE_BYTES = 256 * 1024 * 1024


def utcnow() -> dt.datetime:
    """The present, in UTC, to the second (what evidence and results record)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class EvidenceFile:
    """Recorded evidence: enough to re-judge an audit offline, exactly."""

    target: Mapping[str, JSON]
    started_at: str
    ended_at: str
    judged_at: str
    records: Mapping[str, ProbeRecord]
    discovery: Mapping[str, JSON]
    tool_version: str = __version__

    @classmethod
    def gathered(cls, target: Mapping[str, JSON], started: dt.datetime,
                 records: Mapping[str, ProbeRecord]) -> EvidenceFile:
        """Evidence gathered from `started` until now, judged at its end; discovery from host.discovery."""
        ended = utcnow()
        discovery = records.get("host.discovery")
        return cls(target=target, started_at=started.isoformat(), ended_at=ended.isoformat(),
                   judged_at=ended.isoformat(), records=records,
                   discovery=discovery.value if discovery and discovery.state == "ok" else {})

    def to_json(self) -> dict[str, JSON]:
        return {
            "format": EVIDENCE_FORMAT,
            "tool": {"name": "regaudit", "version": self.tool_version},
            "target": dict(self.target),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "judged_at": self.judged_at,
            "discovery": dict(self.discovery),
            "probes": {name: rec.to_json() for name, rec in sorted(self.records.items())},
        }

    def save(self, path: Path) -> None:
        """Write the evidence (owner-only: it describes the deployment in detail), streamed, atomically."""
        from auditor.atomicfile import write_atomically

        def dump(handle: BinaryIO) -> None:
            # Probe values down to their lists (e.g. one line per tag of registry.content).
            write_json(self.to_json(), handle, expand=5, sort_keys=True)

        try:
            write_atomically(path, dump, mode=0o600)
        except OSError as exc:
            raise UsageError(f"cannot write evidence file {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: Path) -> EvidenceFile:
        """Read an evidence file; UsageError when it is missing or not an evidence file."""
        try:
            data = bounded.load_json_file(path, what="evidence file", max_bytes=MAX_EVIDENCE_BYTES,
                                          max_depth=2 * bounded.MAX_JSON_DEPTH)
        except bounded.InputError as exc:
            raise UsageError(f"cannot read {exc}") from None
        if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT:
            raise UsageError(f"{path} is not a regaudit evidence file (format {EVIDENCE_FORMAT})")
        try:
            records = {name: ProbeRecord.from_json(name, rec) for name, rec in data["probes"].items()}
            loaded = cls(
                target=data["target"],
                started_at=data["started_at"],
                ended_at=data["ended_at"],
                judged_at=data["judged_at"],
                records=records,
                discovery=data.get("discovery", {}),
                tool_version=data.get("tool", {}).get("version", "unknown"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"evidence file {path} is incomplete: missing {exc}") from None
        if (data.get("gathered_by") or {}).get("artifact") == GATHER_ARTIFACT:
            loaded = fit_gathered(loaded)
        check_shapes(path, loaded)
        return loaded


def fit_gathered(evidence: EvidenceFile) -> EvidenceFile:
    """Evidence of the gather-only zipapp (auditor/fleet), fitted to the declared shapes on the control
    host: the zipapp carries no schema checker, so what `regaudit audit` does when it saves evidence
    (an `ok` value of another shape becomes an `error` record naming the field) happens on arrival."""
    from auditor.evidence_schema import fit_to_shape

    records = {name: fit_to_shape(record) for name, record in evidence.records.items()}
    return dataclasses.replace(evidence, records=records)


def check_shapes(path: Path, evidence: EvidenceFile) -> None:
    """UsageError naming the probe, the field and the format when a recorded `ok` value does not fit
    the probe's declared shape (auditor/judge/shapes.py, docs/evidence.md). One pass per value."""
    from auditor.evidence_schema import value_mismatch

    for name, record in sorted(evidence.records.items()):
        if not isinstance(record.state, str) or record.state not in ("ok", "error", "not_applicable"):
            raise UsageError(f"evidence file {path}: probe {name}: state {record.state!r} is not ok, error "
                             "or not_applicable")
        if record.state != "ok":
            continue
        wrong = value_mismatch(name, record.value)
        if wrong is not None:
            raise UsageError(f"evidence file {path}: probe {name}: field {wrong} (this regaudit reads "
                             f"{EVIDENCE_FORMAT} values of the shapes in docs/evidence.md; the file was "
                             f"written by regaudit {evidence.tool_version})")


def merge_evidence(files: list[EvidenceFile]) -> EvidenceFile:
    """Combine evidence gathered from several vantages (e.g. outside from a client network and
    inside on the registry host) into one, as if one audit had seen it all.

    For a probe recorded in several files the first `ok` record wins, else the first record. The
    target takes the first URL and is `inside` when any file is; times span all files and the
    judging time is the latest one.
    """
    if not files:
        raise UsageError("no evidence files given")
    if len(files) == 1:
        return files[0]
    records: dict[str, ProbeRecord] = {}
    for item in files:
        for name, record in item.records.items():
            if name not in records or (records[name].state != "ok" and record.state == "ok"):
                records[name] = record
    target: dict[str, JSON] = {"url": None, "inside": False, "paths": {}, "cosign_keys": [], "options": {}}
    discovery: dict[str, JSON] = {}
    for item in files:
        described = dict(item.target)
        target["url"] = target["url"] or described.get("url")
        target["inside"] = bool(target["inside"]) or bool(described.get("inside"))
        target["paths"] = {**dict(described.get("paths") or {}), **target["paths"]}
        keys = list(target["cosign_keys"])
        target["cosign_keys"] = keys + [k for k in described.get("cosign_keys") or [] if k not in keys]
        target["options"] = {**dict(described.get("options") or {}), **target["options"]}
        discovery = {**dict(item.discovery), **discovery}
    return EvidenceFile(
        target=target,
        started_at=min(f.started_at for f in files),
        ended_at=max(f.ended_at for f in files),
        judged_at=max(f.judged_at for f in files),
        records=records,
        discovery=discovery,
    )
