"""`regaudit remediate` on a private copy of the weak lab: plan, apply, prove, rollback, fault injection.

apply MUTATES a deployment, so these tests never touch the shared `weak` variant other sessions audit:
they register a private copy of it (variant `remedy<pid>`, namespaces `rr<pid>-*`, files under
/var/lib/regaudit-lab/remedy<pid>/) in the lab's variant table at run time, bring it up, and tear it
down at the end (REGAUDIT_LAB_KEEP=1 keeps it). Every test leaves the weak configuration as it found it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lab
import pytest
from lab import variants

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# One private variant per pytest session, so concurrent sessions never share (or mutate) one.
VARIANT = f"remedy{os.getpid()}"
PREFIX = f"rr{os.getpid() % 100000}-"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILE = REPO_ROOT / "tests" / "lab-profile.yaml"
# What the weak lab fails that a config, a mount, a firewall rule or a file mode fixes.
REMEDIABLE = {
    "auth.anonymous-denied", "auth.challenge-over-tls", "files.tls-key", "firewall.registry-port", "http.hsts",
    "http.nosniff",
    "net.registry-port-exposed", "proxy.apache-auth", "proxy.apache-tls", "proxy.nginx-body",
    "proxy.nginx-timeouts", "registry.bind-loopback", "registry.headers", "registry.log-json",
    "registry.stale-uploads", "registry.upload-purging", "tls.ciphers", "tls.protocols", "tmpfs.mounted",
    "tmpfs.size",
}
# What no config can fix on the weak lab: text remediation only. tls.ocsp-stapling: its certificate files
# hold no issuer and no SSLCACertificateFile names one, so Apache could not build an OCSP request.
TEXT_ONLY = {"tls.certificate", "tls.ocsp-stapling", "signatures.present", "signatures.valid", "scans.present", "scans.fresh",
             "scans.digest-match", "scans.severity", "files.htpasswd"}


@pytest.fixture(scope="module")
def remedy() -> Iterator[Any]:
    reason = lab.available()
    if reason:
        pytest.skip(f"lab: {reason}")
    variants.VARIANTS[VARIANT] = dataclasses.replace(variants.VARIANTS["weak"], name=VARIANT, prefix=PREFIX)
    info = lab.up(VARIANT, content=True, recreate=True)
    try:
        yield info
    finally:
        if os.environ.get("REGAUDIT_LAB_KEEP") != "1":
            lab.down(VARIANT)


def _ns(info: Any) -> str:
    return str(info.raw["namespaces"]["registry"])


def regaudit(info: Any, state: Path, *args: str, fault: str | None = None,
             fstab: str | None = None) -> subprocess.CompletedProcess[str]:
    raw = info.raw
    base = raw["base_dir"]
    env = {**os.environ, "REGAUDIT_STATE_DIR": str(state)}
    env.pop("REGAUDIT_REMEDIATE_FAULT", None)
    if fault:
        env["REGAUDIT_REMEDIATE_FAULT"] = fault
    target = [raw["url"], "--ca-bundle", f"{base}/pki/ca.pem", "--fstab", fstab or raw["fstab"],
              "--scan-dir", raw["scan_dir"], "--cosign-key", raw["cosign"]["public_key"],
              "--username", "auditor", "--password-file", raw["auth"]["password_file"], "--profile", str(PROFILE)]
    argv = ["ip", "netns", "exec", _ns(info), "regaudit", *args]
    if args and args[0] in ("audit", "remediate") and not (set(args) & {"--rollback", "--confirm"}):
        argv += target
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)


def live_files(info: Any) -> list[Path]:
    base = Path(info.raw["base_dir"])
    return [base / "registry/config.yml", base / "nginx/nginx.conf", base / "apache/apache2.conf", base / "fstab",
            base / "pki/server-rsa.key", base / "pki/server-ecdsa.key", base / "auth/htpasswd"]


def _ruleset(info: Any, tool: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", _ns(info), tool, "-t", "filter"], capture_output=True, text=True,
                         check=True).stdout
    return "\n".join(re.sub(r"\[\d+:\d+\]", "", line) for line in out.splitlines() if not line.startswith("#"))


def _mount(info: Any) -> str:
    pid = Path(info.raw["nginx"]["pid_file"]).read_text().strip()
    point = info.raw["tmpfs"]["mountpoint"]
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == point:
            return f"{fields[5]} {fields[-1]}"
    raise AssertionError(f"{point} is not mounted in nginx's namespace")


def snapshot(info: Any, extra: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Checksums, modes and owners of every live file, the rulesets, the tmpfs options, the stale upload."""
    out: dict[str, Any] = {}
    for path in (*live_files(info), *extra):
        st = path.stat()
        out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), oct(st.st_mode & 0o7777), st.st_uid,
                          st.st_gid)
    out["iptables"] = _ruleset(info, "iptables-save")
    out["ip6tables"] = _ruleset(info, "ip6tables-save")
    out["tmpfs"] = _mount(info)
    out["stale_uploads"] = [Path(u["path"]).is_dir() for u in info.raw["stale_uploads"]]
    return out


def _status(info: Any, ns_role: str, path: str, netrc: Path | None = None) -> int:
    raw = info.raw
    argv = ["ip", "netns", "exec", raw["namespaces"][ns_role], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            "--cacert", f"{raw['base_dir']}/pki/ca.pem", "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json"]
    if netrc:
        argv += ["--netrc-file", str(netrc)]
    cp = subprocess.run([*argv, f"{raw['url']}{path}"], capture_output=True, text=True, timeout=30, check=False)
    return int(cp.stdout or 0)


def services_run(info: Any) -> None:
    """nginx and Apache alive, the registry listening, and a pull answered through the whole stack."""
    raw = info.raw
    for name in ("nginx", "apache"):
        pid = int(Path(raw[name]["pid_file"]).read_text().strip())
        os.kill(pid, 0)
    listening = subprocess.run(["ip", "netns", "exec", _ns(info), "ss", "-Htln", "sport", "= :5000"],
                               capture_output=True, text=True, check=True).stdout
    assert "LISTEN" in listening, "the registry does not listen"
    assert _status(info, "ci", "/v2/base/alpine/manifests/3.19") in (200, 401)


def _netrc(info: Any, tmp_path: Path) -> Path:
    password = Path(info.raw["auth"]["password_file"]).read_text().strip()
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {info.raw['hostname']} login auditor password {password}\n")
    netrc.chmod(0o600)
    return netrc


def test_plan_shows_a_diff_for_every_remediable_check_and_changes_nothing(remedy: Any, tmp_path: Path) -> None:
    before = snapshot(remedy)
    out_dir = tmp_path / "plan"
    cp = regaudit(remedy, tmp_path / "state", "remediate", "--plan", str(out_dir))
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert snapshot(remedy) == before  # nothing on the host changed
    plan = json.loads((out_dir / "plan.json").read_text())
    assert set(plan["expected_to_pass_after_apply"]) == REMEDIABLE
    texts = {t["check"] for t in plan["text"]}
    assert texts >= TEXT_ONLY
    assert set(plan["failing"]) <= set(plan["expected_to_pass_after_apply"]) | texts  # nothing unresolved
    for path in live_files(remedy)[:4]:
        assert f"--- {path} (live)\n+++ {path} (regaudit)" in cp.stdout, path
        assert (out_dir / "files" / str(path).lstrip("/")).is_file()
    assert "--- commands --apply would run" in cp.stdout and "kill -HUP" in cp.stdout
    # nginx runs as `nginx -c ... -g 'daemon off;'` and Apache with `-D REGAUDIT_LAB`: their validation
    # commands keep those arguments whole (argv from /proc/PID/cmdline, never a split string)
    assert "-g 'daemon off;'" in cp.stdout and "-D REGAUDIT_LAB" in cp.stdout
    for script in out_dir.rglob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0, script
    # The same plan from recorded evidence (--evidence), without auditing again.
    evidence = tmp_path / "evidence.json"
    audit = regaudit(remedy, tmp_path / "state", "audit", "--inside", "--no-progress", "--no-history", "--format",
                     "json", "--output", str(tmp_path / "report"), "--evidence-out", str(evidence))
    assert audit.returncode == 1, audit.stderr
    recorded = regaudit(remedy, tmp_path / "state", "remediate", "--plan", str(tmp_path / "plan2"),
                        f"--evidence={evidence}")
    assert recorded.returncode == 0, recorded.stderr
    again = json.loads((tmp_path / "plan2" / "plan.json").read_text())
    assert again["expected_to_pass_after_apply"] == plan["expected_to_pass_after_apply"]
    assert [f["path"] for f in again["files"]] == [f["path"] for f in plan["files"]]
    assert snapshot(remedy) == before


def test_apply_fixes_every_remediable_check_then_nothing_to_do_then_rollback(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    netrc = _netrc(remedy, tmp_path)
    before = snapshot(remedy)
    assert _status(remedy, "ci", "/v2/base/alpine/manifests/3.19") == 200  # weak: anonymous pulls work
    cp = regaudit(remedy, state, "remediate", "--apply")
    try:
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "re-audit passed" in cp.stdout
        assert regaudit(remedy, state, "remediate", "--confirm").returncode == 0
        _check_fixed(remedy, state, tmp_path, netrc)
    finally:
        back = regaudit(remedy, state, "remediate", "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert snapshot(remedy) == before  # the weak configuration, exactly
    services_run(remedy)
    assert _status(remedy, "ci", "/v2/base/alpine/manifests/3.19") == 200


def _check_fixed(remedy: Any, state: Path, tmp_path: Path, netrc: Path) -> None:
    report_dir = tmp_path / "report"
    audit = regaudit(remedy, state, "audit", "--inside", "--no-progress", "--no-history", "--format", "json",
                     "--output", str(report_dir))
    assert audit.returncode in (0, 1), audit.stderr
    results = json.loads((report_dir / "regaudit.json").read_text())["results"]
    still = sorted({f"{r['check']}: {r['message']}" for r in results
                    if r["check"] in REMEDIABLE and r["status"] not in ("pass", "skip")})
    assert still == []
    assert {r["check"] for r in results if r["status"] == "pass"} >= REMEDIABLE
    assert _status(remedy, "ci", "/v2/base/alpine/manifests/3.19", netrc) == 200  # pulls with auth
    assert _status(remedy, "ci", "/v2/base/alpine/manifests/3.19") == 401  # and only with auth
    again = regaudit(remedy, state, "remediate", "--apply")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr


@pytest.mark.parametrize(("fault", "message"), [
    ("corrupt:nginx", "nginx -t -c"),
    ("corrupt:apache", "apache2 -t -f"),
    ("corrupt:registry", "does not parse"),
    ("fail-reload:registry", "the registry exited at start"),
])
def test_a_failing_step_rolls_back_to_identical_files_and_running_services(remedy: Any, tmp_path: Path,
                                                                           fault: str, message: str) -> None:
    before = snapshot(remedy)
    cp = regaudit(remedy, tmp_path / "state", "remediate", "--apply", fault=fault)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert message in cp.stdout and "rollback complete" in cp.stdout, cp.stdout
    assert snapshot(remedy) == before
    services_run(remedy)


def test_killed_between_two_writes_then_apply_refuses_and_rollback_restores(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = snapshot(remedy)
    cp = regaudit(remedy, state, "remediate", "--apply", fault="kill-after-write:2")
    assert cp.returncode in (-9, 137), cp.stdout + cp.stderr
    assert snapshot(remedy) != before  # really killed halfway
    refused = regaudit(remedy, state, "remediate", "--apply")
    assert refused.returncode == 2 and "unfinished remediation" in refused.stderr
    back = regaudit(remedy, state, "remediate", "--rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert snapshot(remedy) == before
    services_run(remedy)


def test_full_disk_rolls_back(remedy: Any, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)], check=True)
    try:
        fstab = small / "fstab"
        fstab.write_bytes(Path(remedy.raw["fstab"]).read_bytes())
        fd = os.open(small / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        before = snapshot(remedy, (fstab,))
        cp = regaudit(remedy, tmp_path / "state", "remediate", "--apply", fstab=str(fstab))
        assert cp.returncode == 1, cp.stdout + cp.stderr
        assert "No space left on device" in cp.stdout and "rollback complete" in cp.stdout
        assert snapshot(remedy, (fstab,)) == before
        assert sorted(p.name for p in small.iterdir()) == ["filler", "fstab"]
        services_run(remedy)
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_unconfirmed_firewall_change_reverts_by_itself(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = snapshot(remedy)
    cp = regaudit(remedy, state, "remediate", "--apply", "--select", "firewall.registry-port",
                  "--firewall-timeout", "4")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "REGAUDIT-REGISTRY" in _ruleset(remedy, "iptables-save")
    assert "-A REGAUDIT-REGISTRY -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in _ruleset(
        remedy, "iptables-save")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "REGAUDIT-REGISTRY" in _ruleset(remedy, "ip6tables-save"):
        time.sleep(0.5)
    assert snapshot(remedy) == before  # the watchdog restored both rulesets
    late = regaudit(remedy, state, "remediate", "--confirm")
    assert late.returncode == 1 and "too late" in late.stdout


def _modes(info: Any) -> dict[str, int]:
    return {str(p): p.stat().st_mode & 0o777 for p in live_files(info)}


def test_killed_after_each_journal_step_in_turn_rollback_restores_everything(remedy: Any, tmp_path: Path) -> None:
    """SIGKILL right after journal step k is done, for k = 1, 2, ... until an apply completes; after
    each kill --rollback must restore files byte-identical with their modes and owners, the
    rulesets, the tmpfs mount and the running services. The completed apply then shows nothing it
    wrote or backed up is more readable than the original (TLS keys and htpasswd at most 0640)."""
    state = tmp_path / "state"
    before = snapshot(remedy)
    modes_before = _modes(remedy)
    journal_file = state / "remediation" / "journal.json"
    k = 0
    while True:
        k += 1
        assert k < 60, "the apply never completed"
        run = regaudit(remedy, state, "remediate", "--apply", "--firewall-timeout", "600",
                       fault=f"kill-after-step:{k}")
        steps = json.loads(journal_file.read_text())["steps"]
        if run.returncode == 0:
            break
        assert run.returncode in (-9, 137), (k, run.stdout + run.stderr)
        assert len([s for s in steps if s.get("state") == "done"]) == k, (k, steps)
        back = regaudit(remedy, state, "remediate", "--rollback")
        assert back.returncode == 0, f"step {k} {steps[k - 1]}:\n{back.stdout}{back.stderr}"
        assert snapshot(remedy) == before, (k, steps[k - 1])
        services_run(remedy)
    assert k - 1 == len(steps) >= 5, (k, steps)  # every step of the complete apply was a kill point
    try:
        for path, mode in _modes(remedy).items():
            assert mode & ~modes_before[path] == 0, f"{path}: {mode:o} is more open than {modes_before[path]:o}"
        for key in ("pki/server-rsa.key", "pki/server-ecdsa.key", "auth/htpasswd"):
            assert _modes(remedy)[f"{remedy.raw['base_dir']}/{key}"] & 0o037 == 0, key  # at most 0640
        backups = Path(json.loads(journal_file.read_text())["backup_dir"])
        assert backups.stat().st_mode & 0o077 == 0
        copies = [p for p in backups.rglob("*") if p.is_file() and p.relative_to(backups).parts[0] != "moved"]
        assert copies and all(p.stat().st_mode & 0o077 == 0 for p in copies)  # moved-aside data keeps its modes
    finally:
        assert regaudit(remedy, state, "remediate", "--rollback").returncode == 0
    assert snapshot(remedy) == before
    services_run(remedy)


def test_two_applies_at_once_are_refused_by_the_lock(remedy: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(["ip", "netns", "exec", _ns(remedy), "regaudit", "remediate", "--apply",
                               "--firewall-timeout", "600", *_target_args(remedy)],
                              env={**os.environ, "REGAUDIT_STATE_DIR": str(state)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (state / "remediation" / "journal.json").exists():
            time.sleep(0.05)
        second = regaudit(remedy, state, "remediate", "--apply")
        assert second.returncode == 2 and "two applies at once are refused" in second.stderr, second.stderr
    finally:
        out, err = holder.communicate(timeout=600)
        regaudit(remedy, state, "remediate", "--rollback")
    assert holder.returncode == 0, out + err


def _target_args(info: Any) -> list[str]:
    raw = info.raw
    base = raw["base_dir"]
    return [raw["url"], "--ca-bundle", f"{base}/pki/ca.pem", "--fstab", raw["fstab"], "--scan-dir", raw["scan_dir"],
            "--cosign-key", raw["cosign"]["public_key"], "--username", "auditor", "--password-file",
            raw["auth"]["password_file"], "--profile", str(PROFILE)]
