"""Benchmark: a fleet of lightweight registry hosts gathered through Ansible, judged centrally.

Hosts: N network namespaces (rgs-benchNN), each with Debian's sshd on its own loopback port and a
lightweight registry host's files (registry config, nginx config, a one-tag filesystem storage
tree: tests/lab/fleet.py light_host). Figures:

- the playbook (contrib/ansible/regaudit-fleet.yml: build the zipapp, reach, copy, gather, fetch,
  verify the Ed25519 signature, clean up) with Ansible's default forks (5) and with --forks N:
  wall time and targets per minute (ssh connection masters are closed before each run, so every
  run opens its connections afresh);
- `regaudit fleet` over the N targets (judging, history, per-target JSON and HTML reports, the
  five fleet formats): wall time;
- the same hosts audited one by one with the CLI (`regaudit audit --inside` in each namespace,
  sequentially, no SSH): wall time and targets per minute, for comparison;
- CPU seconds per target: the control host's side for the playbook, the whole audit for the CLI.

Usage: python bench/fleet.py [--hosts 20] [--runs 1]   (root; needs ansible-core and openssh-server)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lab.fleet import FleetLab, light_host  # noqa: E402

PLAYBOOK = REPO / "contrib" / "ansible" / "regaudit-fleet.yml"


def _sign_key(base: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private, public = base / "sign.pem", base / "sign.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _cpu() -> float:
    """CPU seconds (user + system) of this process's finished children: for the playbook, the control
    host's side (ansible-playbook, its workers and local tasks, the ssh clients); what runs on the
    targets runs under their sshd and is not counted. For the CLI runs, everything."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600, check=False)
    return time.monotonic() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="playbook runs per forks setting (median reported)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/fleet.py needs root (network namespaces)", file=sys.stderr)
        return 2
    regaudit = shutil.which("regaudit")
    if not regaudit or not shutil.which("ansible-playbook"):
        print("needs regaudit and ansible-playbook on PATH", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="regaudit-bench-fleet-"))
    lab = FleetLab(base / "lab")
    try:
        private, public = _sign_key(base)
        names = [f"bench{i:02d}" for i in range(1, args.hosts + 1)]
        paths = {}
        for i, name in enumerate(names):
            ns = lab.namespace(f"{name}-{os.getpid()}")
            paths[name] = light_host(base / "hosts" / name, name)
            lab.ssh_host(name, ns, 2301 + i, {"regaudit_paths": paths[name]})
        inventory = lab.write_inventory(base / "inventory.yml", {"registries": names}, {}, {
            "regaudit_cli": regaudit, "regaudit_evidence_dir": str(base / "evidence"),
            "regaudit_sign_key": str(private), "regaudit_evidence_public_key": str(public)})
        load = os.getloadavg()
        print(f"fleet of {args.hosts} lightweight hosts (sshd + configs + one-tag storage), "
              f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              "(shared machine: other sessions run tests and labs at the same time)")
        rows = []
        for forks in (None, args.hosts):
            times, cpus = [], []
            for _ in range(args.runs):
                lab.end_connections()
                started, cpu = time.monotonic(), _cpu()
                proc = lab.run_playbook(PLAYBOOK, inventory, forks=forks)
                times.append(time.monotonic() - started)
                cpus.append(_cpu() - cpu)
                if proc.returncode != 0:
                    print(proc.stdout[-3000:], proc.stderr[-2000:], file=sys.stderr)
                    return 1
            wall = statistics.median(times)
            rows.append((f"ansible-playbook, forks={forks or 5}{' (default)' if forks is None else ''}", wall,
                         statistics.median(cpus)))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")},
               "REGAUDIT_STATE_DIR": str(base / "state")}
        judge_wall, judged = _timed([regaudit, "fleet", str(base / "evidence"), "-i", str(inventory), "--format",
                                     "html,json,sarif,junit,prometheus", "--output", str(base / "report")], env)
        if judged.returncode not in (0, 1):
            print(judged.stderr, file=sys.stderr)
            return 1
        started, cpu = time.monotonic(), _cpu()
        for name in names:
            flags = [a for key, value in sorted(paths[name].items()) for a in (f"--{key.replace('_', '-')}", value)]
            proc = subprocess.run(["ip", "netns", "exec", lab.hosts[name].ns, regaudit, "audit", "--inside", *flags,
                                   "--no-progress", "--no-history", "--format", "json", "--output",
                                   str(base / "cli" / name)], capture_output=True, text=True, env=env, timeout=600,
                                  check=False)
            if proc.returncode not in (0, 1):
                print(proc.stderr, file=sys.stderr)
                return 1
        cli_wall, cli_cpu = time.monotonic() - started, _cpu() - cpu
        print(f"{'mode':<44} {'wall s':>8} {'targets/min':>12} {'CPU s/target':>13}")
        for label, wall, cpu_used in rows:
            print(f"{label:<44} {wall:8.1f} {args.hosts / wall * 60:12.1f} {cpu_used / args.hosts:13.2f}")
        print(f"{'CLI host by host (audit --inside, no SSH)':<44} {cli_wall:8.1f} {args.hosts / cli_wall * 60:12.1f} "
              f"{cli_cpu / args.hosts:13.2f}")
        print(f"{'regaudit fleet: judge + report ' + str(args.hosts) + ' targets':<44} {judge_wall:8.1f}")
        return 0
    finally:
        lab.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
