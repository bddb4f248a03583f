#!/usr/bin/env python3
"""Run the regaudit image's demo audit against a lab variant, from a container on the lab's own Docker Engine.

    python3 scripts/image/demo.py [VARIANT] [--keep-engine] [--rootfs dist/image/rootfs.tar]

Starts a dockerd of its own inside the variant's registry namespace (`nsenter --net`; its own
data-root, exec-root, pidfile and socket under <lab base>/image-engine; no bridge, no iptables, so
the lab's firewall is untouched), imports the image (scripts/image/build.py), and runs

    docker run --network host -v <lab CA>:/certs/ca.pem:ro -v <password file>:/run/secrets/registry-password:ro \\
        -v <cosign.pub>:/certs/cosign.pub:ro -v <scan dir>:/scans:ro regaudit:VERSION \\
        audit https://registry.regaudit.test --username auditor --password-file /run/secrets/registry-password \\
        --ca-bundle /certs/ca.pem --cosign-key /certs/cosign.pub --scan-dir /scans --compliance nist-800-190

as the outside and content audit. Prints one JSON line: the image, the container's exit code, the
report's score and counts. Stops the engine it started (by PID) unless --keep-engine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"


def start_engine(ns: str, base: Path) -> tuple[subprocess.Popen[bytes], str]:
    for sub in ("data", "exec"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sock = base / "docker.sock"
    host = f"unix://{sock}"
    argv = [DOCKERD, "--storage-driver", "vfs", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
            "--pidfile", str(base / "docker.pid"), "-H", host, "--bridge", "none", "--iptables=false",
            "--ip-masq=false", "--shutdown-timeout", "5", "--log-level", "warn"]
    log = open(base / "dockerd.log", "ab")  # noqa: SIM115 (the engine outlives this function)
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "--", *argv], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dockerd exited: see {base / 'dockerd.log'}")
        if sock.exists() and subprocess.run([DOCKER, "-H", host, "version"], capture_output=True).returncode == 0:
            return proc, host
        time.sleep(0.3)
    raise SystemExit("dockerd did not answer within 60s")


def stop_engine(proc: subprocess.Popen[bytes], host: str) -> None:
    ids = subprocess.run([DOCKER, "-H", host, "ps", "-aq"], capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run([DOCKER, "-H", host, "rm", "-f", *ids], capture_output=True)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", nargs="?", default="hardened")
    parser.add_argument("--lab-json", help="lab.json to use (default: the variant's, from tests/lab)")
    parser.add_argument("--keep-engine", action="store_true")
    parser.add_argument("--out", default=str(REPO / "dist" / "image"))
    args = parser.parse_args()
    if args.lab_json:
        lab = json.loads(Path(args.lab_json).read_text())
    else:
        sys.path.insert(0, str(REPO / "tests"))
        import lab as labapi

        lab = labapi.up(args.variant).raw
    base = Path(lab["base_dir"]) / "image-engine"
    proc, host = start_engine(lab["namespaces"]["registry"], base)
    try:
        built = subprocess.run([sys.executable, str(REPO / "scripts" / "image" / "build.py"), "--docker-host", host,
                                "--out", args.out], capture_output=True, text=True, check=True)
        image = json.loads(built.stdout.strip().splitlines()[-1])
        reports = Path(tempfile.mkdtemp(prefix="regaudit-image-demo-"))
        os.chmod(reports, 0o777)
        secret = reports / "password"
        shutil.copy(lab["auth"]["password_file"], secret)
        os.chmod(secret, 0o444)  # the container runs as uid 10001
        registry_v4 = lab["addresses"]["registry"]["v4"] if isinstance(lab["addresses"]["registry"], dict) else \
            lab["addresses"]["registry"][0]
        run = subprocess.run([
            DOCKER, "-H", host, "run", "--rm", "--network", "host", "--add-host", f"{lab['hostname']}:{registry_v4}",
            "-v", f"{lab['tls']['ca']}:/certs/ca.pem:ro", "-v", f"{secret}:/run/secrets/registry-password:ro",
            "-v", f"{lab['cosign']['public_key']}:/certs/cosign.pub:ro", "-v", f"{lab['scan_dir']}:/scans:ro",
            "-v", f"{reports}:/workspace/reports", image["image"], "audit", lab["url"], "--username",
            lab["auth"]["username"], "--password-file", "/run/secrets/registry-password", "--ca-bundle",
            "/certs/ca.pem", "--cosign-key", "/certs/cosign.pub", "--scan-dir", "/scans", "--compliance",
            "nist-800-190", "--format", "console,json,sarif", "--output", "/workspace/reports", "--no-progress"],
            capture_output=True, text=True, timeout=900)
        report = json.loads((reports / "regaudit.json").read_text()) if (reports / "regaudit.json").exists() else {}
        print(run.stdout[-3000:], file=sys.stderr)
        print(run.stderr[-2000:], file=sys.stderr)
        print(json.dumps({"image": image["image"], "image_id": image.get("image_id"),
                          "rootfs_sha256": image["rootfs_sha256"], "exit_code": run.returncode,
                          "labels": image["labels"], "sbom": image["sbom"], "layers": image.get("layers"),
                          "score": (report.get("scores") or {}).get("overall"), "counts": report.get("counts"),
                          "reports": str(reports)}, sort_keys=True))
        return 0 if report else 1
    finally:
        if not args.keep_engine:
            stop_engine(proc, host)


if __name__ == "__main__":
    sys.exit(main())
