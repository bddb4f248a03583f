"""The evidence file: every probe's recorded outcome, the target and the time it was judged at."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from auditor import __version__
from auditor.checkapi import ProbeRecord
from auditor.errors import UsageError
from auditor.model import JSON

EVIDENCE_FORMAT = "regaudit-evidence/1"


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> EvidenceFile:
        """Read an evidence file; UsageError when it is missing or not an evidence file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read evidence file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"evidence file {path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT:
            raise UsageError(f"{path} is not a regaudit evidence file (format {EVIDENCE_FORMAT})")
        try:
            records = {name: ProbeRecord.from_json(name, rec) for name, rec in data["probes"].items()}
            return cls(
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
