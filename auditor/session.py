"""One audit session: target (or recorded evidence), profile and options in; results, report,
evidence, history, signature and report files out.

Every mode that audits goes through here: `audit`, `evaluate`, `remediate` (its audit and its
re-audits), `schedule run`, fleets (judging gathered evidence). Commands only turn options into an
:class:`AuditSession` and :class:`Outputs`, and print; they never rebuild the flow.

Contract: `AuditSession.audit(target, credentials, outputs)` gathers, judges at the time gathering
ended, then `finish`es; `AuditSession.evaluate(evidence, outputs, now)` re-judges recorded evidence
(at its recorded time unless `now`), then `finish`es. `finish` saves the evidence (validated,
streamed), records the run in the history store and adds the trend, attaches the compliance views,
writes the report files and the detached signature of the JSON report, in that order. Errors a
user can cause raise UsageError.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.checkapi import Check
from auditor.credentials import Credentials
from auditor.errors import UsageError
from auditor.evidence import EvidenceFile
from auditor.report import AuditReport
from auditor.runner import RunOptions, Selection, evaluate, run_audit
from auditor.target import Target

if TYPE_CHECKING:
    from auditor.probeapi import Probe
    from auditor.signing import PrivateKey


@dataclass(frozen=True)
class Outputs:
    """What a session leaves behind besides its report object (all optional)."""

    formats: tuple[str, ...] = ()  # report writers to run ("console" is the caller's to print)
    out_dir: Path | None = None  # where report files go (required when formats name a writer)
    evidence_out: Path | None = None  # save the evidence for `regaudit evaluate`
    history: bool = False  # record the run in the history store and add the trend to the report
    sign_key: PrivateKey | None = None  # sign the JSON report (needs "json" in formats)
    compliance: tuple[str, ...] = ()  # framework ids whose per-control views the report carries


@dataclass(frozen=True)
class SessionResult:
    """A finished session: the report (results, scores, exit code), its evidence and the files written."""

    report: AuditReport
    evidence: EvidenceFile
    written: tuple[Path, ...] = ()

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


@dataclass
class AuditSession:
    """The engine's entry point: checks and probes, the selection under a profile, run options."""

    checks: Mapping[str, Check]
    selection: Selection
    options: RunOptions = field(default_factory=RunOptions)
    probes: Mapping[str, Probe] | None = None  # loaded on the first live audit when not given

    def audit(self, target: Target, credentials: Credentials | None = None,
              outputs: Outputs = Outputs()) -> SessionResult:
        """A live audit of `target`, finished into `outputs`."""
        check_outputs(outputs)
        if self.probes is None:
            from auditor.catalog import probe_catalog

            self.probes = probe_catalog()
        report, evidence = run_audit(self.checks, self.probes, target, credentials, self.selection, self.options)
        return finish(report, evidence, outputs)

    def evaluate(self, evidence: EvidenceFile, outputs: Outputs = Outputs(),
                 now: dt.datetime | None = None) -> SessionResult:
        """Re-judge recorded evidence (at its recorded time unless `now`), finished into `outputs`."""
        check_outputs(outputs)
        report = evaluate(self.checks, evidence, self.selection, self.options, now)
        return finish(report, evidence, outputs)

    def narrowed(self, ids: set[str], options: RunOptions | None = None) -> AuditSession:
        """The same session judging only the checks `ids` (remediation's re-audit)."""
        return AuditSession(self.checks, Selection(self.selection.profile, tuple(sorted(ids))),
                            options or RunOptions(deadline=self.options.deadline), self.probes)


def check_outputs(outputs: Outputs) -> None:
    """UsageError for outputs that cannot be produced (before any gathering)."""
    if outputs.sign_key is not None and "json" not in outputs.formats:
        raise UsageError("--sign-key signs the JSON report: add json to --format")
    if any(f != "console" for f in outputs.formats) and outputs.out_dir is None:
        raise UsageError("report formats given without an output directory")


def finish(report: AuditReport, evidence: EvidenceFile, outputs: Outputs) -> SessionResult:
    """Evidence file, history, compliance views, report files and signature (module contract)."""
    if outputs.evidence_out is not None:
        evidence.save(outputs.evidence_out)
    if outputs.history:
        from auditor import history

        past = history.trend(dict(report.target))
        history.record(report)
        report = dataclasses.replace(report, history=(*past, history.summary_of(report)))
    if outputs.compliance:
        from auditor.compliance import attach

        report = attach(report, outputs.compliance)
    written: list[Path] = []
    if outputs.out_dir is not None:
        written = write_reports(report, [f for f in outputs.formats if f != "console"], outputs.out_dir)
        if outputs.sign_key is not None:
            written.append(sign_report(outputs.out_dir, outputs.sign_key))
    return SessionResult(report, evidence, tuple(written))


def write_reports(report: AuditReport, wanted: list[str], out_dir: Path) -> list[Path]:
    """Run the named report writers into out_dir; UsageError when a file cannot be written."""
    from auditor.catalog import writer_catalog
    from auditor.reportapi import write_report

    writers = writer_catalog()  # only the writers asked for are imported
    written = []
    for name in wanted:
        try:
            written.append(write_report(writers[name], report, out_dir))
        except OSError as exc:
            raise UsageError(f"cannot write {name} report to {out_dir}: {exc.strerror or exc}") from None
    return written


def sign_report(out_dir: Path, key: PrivateKey) -> Path:
    """Sign the JSON report just written; the signature lands beside it as regaudit.json.sig."""
    from auditor.atomicfile import write_atomically
    from auditor.signing import sign

    report = out_dir / "regaudit.json"
    signature = out_dir / "regaudit.json.sig"
    write_atomically(signature, (json.dumps(sign(report.read_bytes(), key), indent=2) + "\n").encode())
    return signature
