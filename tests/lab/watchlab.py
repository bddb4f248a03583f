"""Continuous-mode lab helpers (variant `watch`, prefix rgv-): a pusher that runs in the CI namespace
and pushes through the real Apache -> nginx -> registry chain, and the registry's own count of
notifications sent (its debug expvar).

CLI (run in rgv-ci with PYTHONPATH=tests): `python3 -m lab.watchlab LAB_JSON SCRIPT_JSON` runs a
list of steps and prints one JSON line per step with wall-clock times:
  {"op": "push", "repo": R, "tag": T, "seed": S}            -> {digest, done_at}
  {"op": "sign", "repo": R, "tag": T, "digest": D}          -> {sig_tag, done_at}   (cosign .sig, trusted key)
  {"op": "scan", "repo": R, "tag": T, "digest": D}          -> {path, done_at}      (clean Trivy report)
  {"op": "delete", "repo": R, "digest": D}                  -> {done_at}
  {"op": "stream", "repo": R, "count": N, "sign": bool, "concurrency": C} -> {digests, done_at, events}
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .content import cosign, oci, trivy
from .content.registry import Registry
from .state import LabInfo

SEVERITIES: list[str] = []
REPO_ROOT = Path(__file__).resolve().parents[2]


class ProxyRegistry(Registry):
    """The lab's Registry client, verifying the proxy's certificate with the lab CA."""

    async def __aenter__(self) -> ProxyRegistry:
        context = ssl.create_default_context(cafile=str(self.token_verify))
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        self._client = httpx.AsyncClient(base_url=self.base_url.rstrip("/"), limits=limits, verify=context,
                                         timeout=self.timeout, trust_env=False)
        return self


def image(seed: str) -> oci.Image:
    """A one-layer image whose content (so digest) depends on `seed` only."""
    layer = oci.tar_layer({f"etc/watch-{seed}": seed.encode()}, oci.OCI_LAYER)
    return oci.build_image([layer], oci=True)


class Pusher:
    def __init__(self, lab: dict[str, Any]) -> None:
        self.lab = lab
        self.hostname = lab["hostname"]
        self.key = cosign.load_private_key(Path(lab["cosign"]["private_key"]))
        self.images: dict[str, oci.Image] = {}

    def registry(self) -> Registry:
        password = Path(self.lab["auth"]["password_file"]).read_text().strip()
        return ProxyRegistry(self.lab["url"], username=self.lab["auth"]["username"], password=password,
                        token_verify=self.lab["tls"]["ca"], max_connections=16)

    async def push(self, reg: Registry, repo: str, tag: str, seed: str) -> dict[str, Any]:
        img = image(seed)
        for blob in img.blobs:
            await reg.push_blob(repo, blob)
        await reg.put_manifest(repo, tag, img.manifest)
        self.images[img.manifest.digest] = img
        return {"digest": img.manifest.digest, "done_at": time.time()}

    async def sign(self, reg: Registry, repo: str, digest: str) -> dict[str, Any]:
        sig = cosign.legacy_signature(self.key, f"{self.hostname}/{repo}", digest)
        for blob in (sig.payload, sig.config):
            await reg.push_blob(repo, blob)
        await reg.put_manifest(repo, sig.tag, sig.manifest)
        return {"sig_tag": sig.tag, "done_at": time.time()}

    def scan(self, repo: str, tag: str, digest: str, seed: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = trivy.report(hostname=self.hostname, repo=repo, tag=tag, repo_digest=digest,
                            image=self.images.get(digest) or image(seed), created_at=now, severities=SEVERITIES)
        path = trivy.write(Path(self.lab["scan_dir"]), repo, tag, body, now)
        return {"path": str(path), "done_at": time.time()}

    async def delete(self, reg: Registry, repo: str, digest: str) -> dict[str, Any]:
        response = await reg.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=f"repository:{repo}:delete,*")
        return {"status": response.status_code, "done_at": time.time()}

    async def stream(self, reg: Registry, repo: str, count: int, sign: bool, concurrency: int) -> dict[str, Any]:
        """`count` tags pushed (and signed) with `concurrency` pushes in flight."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        digests: dict[str, str] = {}
        stamp = f"{time.time_ns()}"

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                tag = f"s{i}"
                pushed = await self.push(reg, repo, tag, f"{stamp}-{i}")
                digests[tag] = pushed["digest"]
                if sign:
                    await self.sign(reg, repo, pushed["digest"])

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"digests": digests, "started_at": started, "done_at": time.time()}

    async def run(self, steps: list[dict[str, Any]]) -> None:
        async with self.registry() as reg:
            for step in steps:
                op = step["op"]
                if op == "push":
                    out = await self.push(reg, step["repo"], step["tag"], step["seed"])
                elif op == "sign":
                    out = await self.sign(reg, step["repo"], step["digest"])
                elif op == "scan":
                    out = self.scan(step["repo"], step["tag"], step["digest"], step.get("seed", ""))
                elif op == "delete":
                    out = await self.delete(reg, step["repo"], step["digest"])
                elif op == "sleep":
                    await asyncio.sleep(float(step["seconds"]))
                    out = {"done_at": time.time()}
                elif op == "stream":
                    out = await self.stream(reg, step["repo"], int(step["count"]), bool(step.get("sign")),
                                            int(step.get("concurrency", 4)))
                else:
                    raise SystemExit(f"unknown op {op}")
                print(json.dumps({"op": op, **out}), flush=True)


RECEIVER = """
import http.server, json, sys, time
out = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(json.dumps({"path": self.path, "body": json.loads(body), "received_at": time.time()}) + "\\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 9472), H).serve_forever()
"""


class Watch:
    """The watcher process in the registry namespace, its database, and the alert receiver."""

    def __init__(self, info: LabInfo, tmp: Path, grace_seconds: float, *extra: str) -> None:
        self.info = info
        self.tmp = tmp
        self.db = tmp / "watch.sqlite"
        self.state_dir = tmp / "state"
        raw = info.raw
        base = Path(raw["base_dir"])
        profile = tmp / "watch-profile.yaml"
        profile.write_text("name: watch-lab\nextends: seed-hardened\n"
                           f"params:\n  signatures.present: {{grace_minutes: {grace_seconds / 60}}}\n")
        self.argv = [sys.executable, "-m", "auditor", "watch", "serve", raw["url"],
                     "--token-file", raw["watch"]["token_file"], "--db", str(self.db), "--profile", str(profile),
                     "--ca-bundle", raw["tls"]["ca"], "--username", raw["auth"]["username"],
                     "--password-file", raw["auth"]["password_file"], "--cosign-key", raw["cosign"]["public_key"],
                     "--scan-dir", raw["scan_dir"], "--recheck-interval", "0.5",
                     "--alert", "webhook=http://127.0.0.1:9472/hook", "--alert", "slack=http://127.0.0.1:9472/slack",
                     "--alert", "alertmanager=http://127.0.0.1:9472", *extra]
        self.env = {**os.environ, "REGAUDIT_STATE_DIR": str(self.state_dir), "PYTHONPATH": str(REPO_ROOT)}
        self.alerts_file = tmp / "alerts.jsonl"
        self.alerts_file.touch()
        self.receiver = subprocess.Popen(["ip", "netns", "exec", info.ns("registry"), sys.executable, "-c", RECEIVER,
                                          str(self.alerts_file)], start_new_session=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lab_json = base / "lab.json"
        del base

    def start(self) -> None:
        log = open(self.tmp / "watch.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.info.ns("registry"), *self.argv], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        log.close()
        wait_for(self.ready, 60, "the watcher to be ready")

    def ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.tmp / "watch.log").read_text()[-3000:]
        return bool(self.health().get("ready")) and self.db.exists()

    def health(self) -> dict[str, Any]:
        out = self.info.run_in("registry", ["curl", "-sf", "http://127.0.0.1:9471/healthz"], timeout=10, check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def metrics(self) -> str:
        return str(self.info.run_in("registry", ["curl", "-sf", "http://127.0.0.1:9471/metrics"], timeout=10).stdout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.receiver.kill()
        self.receiver.wait()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return conn.execute(query, args).fetchall()

    def state(self, repo: str, tag: str) -> str | None:
        rows = self.sql("SELECT state FROM tags WHERE repository = ? AND tag = ?", repo, tag)
        return rows[0][0] if rows else None

    def row(self, repo: str, tag: str) -> dict[str, Any]:
        rows = self.sql("SELECT digest, state, message, findings FROM tags WHERE repository = ? AND tag = ?", repo, tag)
        digest, state, message, findings = rows[0]
        return {"digest": digest, "state": state, "message": message, "findings": json.loads(findings)}

    def changed_at(self, repo: str, tag: str, new_state: str, after: float) -> float | None:
        rows = self.sql("SELECT MIN(at) FROM changes WHERE repository = ? AND tag = ? AND new_state = ? AND at >= ?",
                        repo, tag, new_state, after)
        return rows[0][0]

    def events(self) -> int:
        return int(self.sql("SELECT COUNT(*) FROM events")[0][0])

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.alerts_file.read_text().splitlines() if line.strip()]

    def regaudit(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "auditor", *argv], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)

    def push(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = self.info.run_in("ci", [sys.executable, "-m", "lab.watchlab", str(self.lab_json), "-"],
                               env={"PYTHONPATH": str(REPO_ROOT / "tests")}, timeout=300, input=json.dumps(steps))
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]


def wait_for(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def notifications_sent(lab: Any) -> dict[str, int]:
    """The registry's own counters for the watcher's endpoint (expvar on the debug address)."""
    out = lab.run_in("registry", ["curl", "-sf", f"http://{lab.raw['registry']['debug_addr']}/debug/vars"], timeout=10)
    data = json.loads(out.stdout)
    for endpoint in data["registry"]["notifications"]["endpoints"]:
        if endpoint["name"] == "regaudit-watch":
            metrics = endpoint["Metrics"]
            return {k: int(metrics[k]) for k in ("Pending", "Events", "Successes", "Failures", "Errors")}
    raise KeyError("no regaudit-watch endpoint in the registry's expvar")


def main(argv: list[str]) -> int:
    lab = json.loads(Path(argv[0]).read_text())
    steps = json.loads(Path(argv[1]).read_text()) if argv[1] != "-" else json.load(sys.stdin)
    asyncio.run(Pusher(lab).run(steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
