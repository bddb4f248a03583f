"""Which tags --rescan-stale rescans, judged on compacted reports (an upstream Trivy golden file)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from auditor.content.rescan import find_trivy, plan
from auditor.judge.scans import compact_report

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "trivy" / "alpine-310.json.golden"
NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def report(hours_old: float | None, digest: str) -> dict:
    doc = json.loads(GOLDEN.read_text())
    doc["CreatedAt"] = (NOW - dt.timedelta(hours=hours_old)).isoformat() if hours_old is not None else None
    doc.setdefault("Metadata", {})["RepoDigests"] = [f"registry.example/app@{digest}"]
    return compact_report(doc, None)


def test_plan_picks_missing_stale_foreign_and_unreadable_reports() -> None:
    tags = [{"repo": "app", "tag": t, "digest": D1} for t in ("fresh", "old", "other", "gone", "broken", "timeless")]
    tags += [{"repo": "a/b", "tag": "c", "digest": D1}, {"repo": "a", "tag": "b_c", "digest": D1},  # collide
             {"repo": "app", "tag": "unreadable-tag", "error": "HTTP 500"}]
    reports = {"app_fresh.json": report(1, D1), "app_old.json": report(100, D1), "app_other.json": report(1, D2),
               "app_broken.json": {"parse_error": "unreadable"}, "app_timeless.json": report(None, D1)}
    chosen = {(s.tag, s.reason) for s in plan({"tags": tags}, {"reports": reports}, 48, NOW)}
    assert chosen == {("old", "report older than 48h"), ("other", "report is of another digest"),
                      ("gone", "no report"), ("broken", "report unreadable"), ("timeless", "report has no time")}


def test_find_trivy_reports_why_it_cannot_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_trivy() == (None, "trivy is not installed (not on PATH)")
    assert find_trivy(str(tmp_path / "nope"))[1].endswith("is not an executable")
