"""Run `regaudit audit` as a subprocess and collect what it produced (exit code, time, report, evidence).

Contract: `audit(url, tmp, *extra, env=..., timeout=...)` never hangs the test: the process is
killed (by its own PID) after `timeout` seconds and the run is marked `killed`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.model import Status, rollup


@dataclass
class AuditRun:
    rc: int | None
    seconds: float
    killed: bool
    stdout: str
    stderr: str
    report_text: str
    evidence_text: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.report_text)

    def results(self, check_id: str) -> list[dict[str, Any]]:
        return [r for r in self.report["results"] if r["check"] == check_id]

    def status(self, check_id: str) -> Status:
        return rollup([Status(r["status"]) for r in self.results(check_id)])

    def statuses(self) -> dict[str, Status]:
        return {c: self.status(c) for c in sorted({r["check"] for r in self.report["results"]})}


def audit(url: str, tmp: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 60.0,
          netns: str | None = None, debug: bool = False) -> AuditRun:
    out = tmp / "reports"
    evidence = tmp / "evidence.json"
    cmd = ["regaudit", *(["--debug"] if debug else []), "audit", url, "--no-progress", "--format", "console,json", "--output", str(out),
           "--evidence-out", str(evidence), *extra]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}
    full_env.update(env or {})
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    killed = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        killed = True
    seconds = time.monotonic() - started
    report = out / "regaudit.json"
    return AuditRun(None if killed else proc.returncode, seconds, killed, stdout, stderr,
                    report.read_text() if report.exists() else "",
                    evidence.read_text() if evidence.exists() else "")
