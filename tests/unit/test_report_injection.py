"""Terminal and report injection: a hostile registry (tests/hostile/servers.py, behaviour `injection`)
serves terminal escapes, HTML, Markdown pipes, XML-invalid characters and bidi overrides in its
headers, repository and tag names, error bodies and certificate subject. One audit writes every
report format; each is parsed back, the console carries no control character, and the HTML shows
the strings as text in headless Chromium (no script runs, no element is injected).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from headless import CHROMIUM, chromium_page
from hostile.servers import INJECTION, SUBJECT_INJECTION, HostileServer, make_cert

from auditor.plugins import load_report_writers

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("injection")
    cert, key = make_cert(tmp, common_name=SUBJECT_INJECTION)
    formats = ",".join(["console", *sorted(load_report_writers())])
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}
    env.update(REGAUDIT_USERNAME="auditor", REGAUDIT_PASSWORD="Injection-Test-Pa55word-5e0d",
               REGAUDIT_STATE_DIR=str(tmp / "state"))
    with HostileServer("injection", tls=(cert, key)) as server:
        proc = subprocess.run(["regaudit", "audit", server.url, "--ca-bundle", str(cert), "--no-progress", "-v",
                               "--format", formats, "--output", str(tmp / "out"), "--deadline", "60"],
                              capture_output=True, env=env, timeout=300)
    yield {"proc": proc, "out": tmp / "out", "formats": formats}


def test_the_hostile_strings_reach_the_results(hostile_audit: dict[str, Any]) -> None:
    proc = hostile_audit["proc"]
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")[-2000:]
    assert b"Traceback" not in proc.stderr
    report = json.loads((hostile_audit["out"] / "regaudit.json").read_text())
    subjects = {r["subject"] for r in report["results"]}
    assert f"app/{INJECTION}:*" in subjects  # a hostile repository name, kept exactly in JSON
    assert f"ok/app:{INJECTION}" in subjects  # a hostile tag
    invalid = [r for r in report["results"] if r["subject"] == f"app/{INJECTION}:*"]
    assert invalid and all(r["status"] == "error" and "not a valid repository name" in r["message"] for r in invalid)
    assert any(SUBJECT_INJECTION[:6] in r["message"] for r in report["results"] if r["check"] == "tls.certificate")


def test_the_console_carries_no_control_sequence(hostile_audit: dict[str, Any]) -> None:
    for stream in (hostile_audit["proc"].stdout, hostile_audit["proc"].stderr):
        text = stream.decode("utf-8")
        assert not CONTROL.search(text), repr(CONTROL.search(text))
    stdout = hostile_audit["proc"].stdout.decode()
    assert "app/evil\\x1b[31mRED" in stdout  # shown, escaped, on one line
    assert all(not line.startswith("## heading") for line in stdout.splitlines())  # no forged line


def test_every_report_format_parses_back(hostile_audit: dict[str, Any]) -> None:
    out: Path = hostile_audit["out"]
    written = {p.name for p in out.iterdir()}
    for path in out.glob("*.json"):
        json.loads(path.read_text())
    sarif = json.loads((out / "regaudit.sarif").read_text())
    assert any(INJECTION in json.dumps(run) or "app/evil" in json.dumps(run) for run in sarif["runs"])
    junit = ET.parse(out / "regaudit.junit.xml").getroot()
    assert any("app/evil\\x1b" in (case.get("name") or "") + ET.tostring(case, encoding="unicode")
               for case in junit.iter("testcase"))
    from prometheus_client.parser import text_string_to_metric_families

    families = list(text_string_to_metric_families((out / "regaudit.prom").read_text()))
    assert families
    md = (out / "regaudit.md").read_text()
    assert not CONTROL.search(md)
    for line in md.splitlines():
        if line.startswith("| ") and ("ERROR" in line or "FAIL" in line):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6, line  # five cells: no pipe escaped the table
    assert "<script>" not in md and "<img" not in md
    if "regaudit.csv" in written:
        rows = list(csv.reader((out / "regaudit.csv").open(newline="", encoding="utf-8")))
        assert len({len(r) for r in rows}) == 1 and any(INJECTION in cell for r in rows for cell in r)
    html = (out / "regaudit.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;alert(1)" in html


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_the_html_report_shows_the_strings_as_text_in_chromium(hostile_audit: dict[str, Any]) -> None:
    page_file = hostile_audit["out"] / "regaudit.html"
    with chromium_page() as watched:
        page = watched.page
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        text = page.inner_text("body")
        injected = page.evaluate("() => document.querySelectorAll('img, iframe').length + [...document."
                                 "querySelectorAll('b, i')].filter(e => /^(bold|t)$/.test(e.textContent)).length")
        scripts = page.evaluate("() => document.scripts.length")
    assert dialogs == [] and watched.requests == [page_file.as_uri()]
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(2)>" in text
    assert "<b>bold</b>/x" in text
    assert injected == 0
    assert scripts == (page_file.read_text().count("<script"))
