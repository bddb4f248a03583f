"""The secret-scanning plugin (tests/secretscan.py) itself: it sees CLI runs and finds leaks."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import secretscan

PASSWORD = "Scanner-Self-Test-Pa55-91c2"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
            "REGAUDIT_STATE_DIR": str(tmp_path / "state"), "REGAUDIT_USERNAME": "scanuser",
            "REGAUDIT_PASSWORD": PASSWORD}


def test_every_cli_run_is_recorded_with_its_output(tmp_path: Path) -> None:
    before = len(secretscan._pending)
    subprocess.run(["regaudit", "checks", "--format", "json"], capture_output=True, env=_env(tmp_path), timeout=120)
    run = secretscan._pending[before]
    assert run.argv[:2] == ["regaudit", "checks"] and run.outputs and run.env["REGAUDIT_PASSWORD"] == PASSWORD
    assert secretscan.scan(run) == []


def test_leaks_in_output_and_written_files_are_found(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    basic = base64.b64encode(f"scanuser:{PASSWORD}".encode()).decode()
    (out / "report.html").write_text(f"<p>Authorization: Basic {basic}</p>")
    (out / "evidence.json").write_text('{"token": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhdWRpdG9yIn0.'
                                       'c2lnbmF0dXJlLWJ5dGVzLWhlcmU"}')
    run = secretscan.CliRun(["regaudit", "audit", "--output", str(out)], _env(tmp_path), str(tmp_path), 0.0,
                            [f"password is {PASSWORD}\n".encode()])
    hits = secretscan.scan(run)
    assert any(h.startswith("password found in stdout") for h in hits), hits
    assert f"Basic credentials of scanuser found in {out / 'report.html'}" in hits
    assert f"a JWT bearer token found in {out / 'evidence.json'}" in hits
    assert not any(PASSWORD in h or basic in h for h in hits)  # the failure message never shows the secret
