"""Verdict changes into the audit history: each change of the watched state becomes a run.

A run recorded here has the registry's history key as its target (the same key `regaudit audit`
uses for that URL), the profile's name, and as findings the failing or undecidable content
results of every live tag, so `regaudit history`, `history diff` and the HTML report's trend show
what the watcher saw. Its score is the share of live tags that pass (0-100).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from auditor import history
from auditor.scoring import grade


def record_snapshot(store: Any, config: Any) -> str:
    """Write one run of the current state; returns its run id."""
    rows = store.tags()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    run_id = uuid.uuid4().hex
    live = len(rows)
    passing = sum(1 for r in rows if r.state == "pass")
    failing = [r for r in rows if r.state in ("fail", "error")]
    score = round(100.0 * passing / live, 1) if live else None
    counts = {state: sum(1 for r in rows if r.state == state) for state in ("pass", "pending", "fail", "error")}
    findings = []
    for row in failing:
        for item in row.findings or [{"check": "watch.verdict", "status": row.state, "severity": "high",
                                      "message": row.message}]:
            findings.append((run_id, item["check"], row.subject, item["status"], item["severity"],
                             f"{item['message']} (watch: {row.state} since "
                             f"{dt.datetime.fromtimestamp(row.since, dt.UTC).isoformat()})"))
    with history.connect(config.history_dir) as conn:
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (run_id, config.history_target, f"{config.profile_name} (watch)", now, now, now, score,
                      grade(score, False) if score is not None else "-", 1 if failing else 0,
                      json.dumps({"watch": counts})))
        conn.executemany("INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?)", findings)
    return run_id
