"""History (diff, baseline), scheduled runs, and signed reports."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import nacl.secret
import nacl.utils
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .helpers import FIXTURES
from .test_cli import CONFIG_CHECKS, regaudit

GUIDE = FIXTURES / "registry" / "guide-config.yml"
PURGING_OFF = FIXTURES / "registry" / "purging-disabled.yml"


def _audit(config: Path, out: Path, state: Path, *extra: str) -> subprocess.CompletedProcess:
    return regaudit("audit", "--inside", "--registry-config", str(config), "--select", CONFIG_CHECKS,
                    "--no-progress", "--output", str(out), "--fail-on", "medium", *extra,
                    env={"REGAUDIT_STATE_DIR": str(state)})


def test_history_diff_and_baseline_after_a_fix(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "config.yml"
    config.write_text(PURGING_OFF.read_text().replace("formatter: json", "formatter: text"))
    before = _audit(config, tmp_path / "r1", state)
    assert before.returncode == 1
    config.write_text(PURGING_OFF.read_text())  # fix the log format, purging still off
    after = _audit(config, tmp_path / "r2", state)
    assert after.returncode == 1
    runs = json.loads(regaudit("history", "--format", "json", env={"REGAUDIT_STATE_DIR": str(state)}).stdout)
    assert len(runs) == 2 and runs[0]["score"] > runs[1]["score"]
    diff = json.loads(regaudit("diff", runs[1]["run_id"][:10], "latest", "--format", "json",
                               env={"REGAUDIT_STATE_DIR": str(state)}).stdout)
    assert [f["check"] for f in diff["fixed"]] == ["registry.log-json"]
    assert [f["check"] for f in diff["still_failing"]] == ["registry.upload-purging"]
    assert diff["new"] == []
    # Nothing new since the first run: the baseline lets the pipeline pass.
    baseline = _audit(config, tmp_path / "r3", state, "--baseline", runs[1]["run_id"])
    assert baseline.returncode == 0, baseline.stdout
    from_file = _audit(config, tmp_path / "r4", state, "--baseline", str(tmp_path / "r1" / "regaudit.json"))
    assert from_file.returncode == 0
    # A new failure is not covered by the baseline.
    config.write_text(PURGING_OFF.read_text().replace("  delete:\n    enabled: true  # Required for garbage collection\n", ""))
    assert _audit(config, tmp_path / "r5", state, "--baseline", runs[1]["run_id"]).returncode == 1
    html = (tmp_path / "r2" / "regaudit.json").read_text()
    assert len(json.loads(html)["history"]) == 2


def test_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    proc = regaudit("diff", "nope", "latest", env={"REGAUDIT_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "no run 'nope'" in proc.stderr


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mode", ["systemd", "cron"])
def test_schedule_install_run_as_written_and_remove(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "etc"
    spec_dir, unit_dir, cron_dir = root / "regaudit", root / "systemd", root / "cron.d"
    for d in (spec_dir, unit_dir, cron_dir):
        d.mkdir(parents=True)
    (cron_dir / "unrelated").write_text("0 0 * * * root true\n")
    before = _tree(root)
    reports, prom = tmp_path / "reports", tmp_path / "textfile" / "regaudit.prom"
    prom.parent.mkdir()
    env = {"REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    proc = regaudit("schedule", "install", "nightly", "--inside", "--mode", mode, "--spec-dir", str(spec_dir),
                    "--unit-dir", str(unit_dir), "--cron-dir", str(cron_dir), "--report-dir", str(reports),
                    "--keep", "2", "--prometheus-file", str(prom), "--at", "02:30",
                    "--audit-args", f"--registry-config {GUIDE} --select {CONFIG_CHECKS}", env=env)
    assert proc.returncode == 0, proc.stderr
    if mode == "systemd":
        service = (unit_dir / "regaudit-nightly.service").read_text()
        timer = (unit_dir / "regaudit-nightly.timer").read_text()
        assert "OnCalendar=*-*-* 02:30:00" in timer
        if shutil.which("systemd-analyze"):
            verify = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / "regaudit-nightly.service"),
                                     str(unit_dir / "regaudit-nightly.timer")], capture_output=True, text=True)
            assert verify.returncode == 0, verify.stderr
        command = next(line.split("=", 1)[1] for line in service.splitlines() if line.startswith("ExecStart="))
    else:
        entry = (cron_dir / "regaudit-nightly").read_text().splitlines()[-1]
        assert entry.startswith("30 2 * * * root ")
        command = entry.split(" root ", 1)[1].split(";", 1)[1].strip().removesuffix(" >/dev/null 2>&1")
    for _ in range(3):  # run the unit's command line as written; keep 2 report directories
        ran = subprocess.run(shlex.split(command), capture_output=True, text=True, env={**os.environ, **env})
        assert ran.returncode == 0, ran.stderr
        subprocess.run(["sleep", "1.1"])
    kept = sorted(p.name for p in reports.iterdir())
    assert len(kept) == 2
    assert (reports / kept[-1] / "regaudit.json").exists()
    assert "regaudit_score" in prom.read_text()
    removed = regaudit("schedule", "remove", "nightly", "--spec-dir", str(spec_dir))
    assert removed.returncode == 0, removed.stderr
    assert _tree(root) == before


def _cosign_key(private: ec.EllipticCurvePrivateKey, password: bytes) -> str:
    """A private key in cosign's encrypted format (scrypt N=65536 r=8 p=1 + nacl secretbox)."""
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    salt, nonce = nacl.utils.random(32), nacl.utils.random(24)
    key = Scrypt(salt=salt, length=32, n=65536, r=8, p=1).derive(password)
    box = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
    envelope = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(box).decode(),
    }).encode()
    body = base64.b64encode(envelope).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + \
        "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519", "cosign"])
def test_signed_report_verifies_and_a_tampered_one_fails(tmp_path: Path, kind: str) -> None:
    private = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    key_file, pub_file = tmp_path / "sign.key", tmp_path / "sign.pub"
    env = {"REGAUDIT_STATE_DIR": str(tmp_path / "state")}
    if kind == "cosign":
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        key_file.write_text(_cosign_key(private, b"correct horse"))
        env["COSIGN_PASSWORD"] = "correct horse"
    else:
        key_file.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    pub_file.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
    out = tmp_path / "out"
    proc = regaudit("audit", "--inside", "--registry-config", str(GUIDE), "--select", CONFIG_CHECKS,
                    "--output", str(out), "--format", "json", "--sign-key", str(key_file), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    report = out / "regaudit.json"
    ok = regaudit("verify-report", str(report), "--key", str(pub_file))
    assert ok.returncode == 0 and "OK" in ok.stdout
    other = tmp_path / "other.pub"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert regaudit("verify-report", str(report), "--key", str(other)).returncode == 1
    report.write_text(report.read_text().replace('"exit_code": 0', '"exit_code": 1'))
    tampered = regaudit("verify-report", str(report), "--key", str(pub_file))
    assert tampered.returncode == 1 and "INVALID" in tampered.stdout


def test_wrong_cosign_password_is_a_usage_error(tmp_path: Path) -> None:
    key_file = tmp_path / "cosign.key"
    key_file.write_text(_cosign_key(ec.generate_private_key(ec.SECP256R1()), b"right"))
    proc = regaudit("audit", "--inside", "--registry-config", str(GUIDE), "--sign-key", str(key_file),
                    env={"COSIGN_PASSWORD": "wrong", "REGAUDIT_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "wrong COSIGN_PASSWORD" in proc.stderr
