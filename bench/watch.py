"""Benchmark of `regaudit watch` on the lab's real registry (variant watch, rgv-): continuous mode.

Measures, in one run:
  1. events/s through the registry: pushes (and their signatures) streamed from the CI namespace
     through Apache -> nginx -> registry while the registry delivers its notifications to the
     watcher; ingested = events stored durably, judged = tag verdicts made from them. The registry
     delivers one event per request, one request at a time per endpoint, so this rate is the
     registry's delivery rate bounded by the watcher's answer time (one fsync'd commit).
  2. intake capacity: the same envelopes (new event ids), sent by 32 concurrent senders straight to
     the watcher while the pushes of (1) run; what one watcher ingests when several registries (or a
     registry's retry backlog) deliver at once.
  3. signature push -> verdict `pass`: tags pushed and scanned (unsigned: pending), then signed one at
     a time; time from the signature push's completion to the stored verdict change (p50, p99).
  4. push -> alert of a tag still unsigned after the grace period (grace --grace seconds for the run):
     time from the push's completion to the alert's arrival at a webhook receiver, and the part
     beyond the grace period.
  5. RSS of the watcher after 100,000 events (--events) sent to it, read from /proc/PID/status.
  6. lost events across --kills kill -9 of the watcher during a stream of pushes: the registry's own
     counters (expvar: Events queued, Successes delivered, Pending) against the watcher's distinct
     stored events.

Usage (root, lab machine): python3 bench/watch.py [--tags 200] [--kills 20] [--events 100000] [--grace 2]
The machine is shared: run `uptime` alongside and report the load with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import lab  # noqa: E402
from lab.watchlab import Watch, notifications_sent, wait_for  # noqa: E402

MEDIA = "application/vnd.docker.distribution.events.v1+json"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream(watch: Watch, repo: str, count: int, concurrency: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", watch.info.ns("ci"), sys.executable, "-m", "lab.watchlab", str(watch.lab_json), "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests")})
    assert proc.stdin is not None
    proc.stdin.write(json.dumps([{"op": "stream", "repo": repo, "count": count, "sign": True,
                                  "concurrency": concurrency}]).encode())
    proc.stdin.close()
    return proc


def judged(watch: Watch) -> int:
    return int(watch.sql("SELECT COUNT(*) FROM tags WHERE judged_at IS NOT NULL")[0][0])


SENDER = r"""
import asyncio, json, sys, time
port, token, count, conc, media = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
templates = [t.split("@@ID@@") for t in json.loads(sys.stdin.read())]
state = {"next": 0, "refused": 0}

async def connection(tag):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while state["next"] < count:
        i = state["next"]; state["next"] += 1
        before, after = templates[i % len(templates)]
        body = (before + f"bench-{tag}-{i}-{time.time_ns()}" + after).encode()
        head = (f"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {media}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        while True:  # a 503 (backpressure) is retried, as the registry would
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if status_line.split()[1] == b"200":
                break
            state["refused"] += 1
            await asyncio.sleep(0.05)
    writer.close()

async def main():
    started = time.monotonic()
    await asyncio.gather(*(connection(n) for n in range(conc)))
    print(json.dumps({"sent": count, "refused": state["refused"], "seconds": time.monotonic() - started}))

asyncio.run(main())
"""


def send_direct(watch: Watch, events: list[dict[str, Any]], count: int, concurrency: int) -> dict[str, Any]:
    """`count` envelopes (the given events with new ids) over `concurrency` keep-alive connections; a 503 is
    retried. A raw HTTP/1.1 client: the sender must not be the bottleneck on two busy cores."""
    token = Path(watch.info.raw["watch"]["token_file"]).read_text().strip()
    templates = [json.dumps({"events": [{**event, "id": "@@ID@@"}]}) for event in events]
    out = watch.info.run_in("registry", [sys.executable, "-c", SENDER, "9471", token, str(count), str(concurrency),
                                         MEDIA], input=json.dumps(templates), timeout=3600)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def captured_events(watch: Watch, limit: int = 200) -> list[dict[str, Any]]:
    rows = watch.sql("SELECT timestamp, action, media_type, repository, tag, digest, actor FROM events "
                     "ORDER BY seq DESC LIMIT ?", limit)
    return [{"timestamp": r[0], "action": r[1], "target": {"mediaType": r[2], "repository": r[3], "tag": r[4],
                                                            "digest": r[5]}, "actor": {"name": r[6]}} for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=200, help="tags pushed and signed for the throughput run")
    parser.add_argument("--latency-tags", type=int, default=40, help="tags signed one at a time for the latency")
    parser.add_argument("--alert-tags", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000, help="events sent before reading RSS")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--grace", type=float, default=2.0, help="grace period of the run, seconds")
    args = parser.parse_args()
    reason = lab.available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    info = lab.up("watch", content=False)
    figures: dict[str, Any] = {"load_before": os.getloadavg()}
    run = str(int(time.time()))
    with tempfile.TemporaryDirectory(prefix="regaudit-watch-bench-") as tmp:
        watch = Watch(info, Path(tmp), args.grace)
        try:
            watch.start()
            wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 600, "the registry's earlier queue")
            figures.update(latency(watch, run, args.latency_tags))
            figures.update(alerts(watch, run, args.alert_tags, args.grace))
            figures.update(throughput(watch, run, args.tags))
            figures.update(kills(watch, run, args.kills))
            figures.update(memory(watch, args.events))
        finally:
            watch.stop()
    figures["load_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2, default=str))
    return 0


def throughput(watch: Watch, run: str, tags: int) -> dict[str, Any]:
    wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 600, "the registry's earlier queue to drain")
    sent0, events0, judged0 = notifications_sent(watch.info), watch.events(), judged(watch)
    started = time.time()
    pusher = stream(watch, f"bench/t{run}", tags, 8)
    pending_max = 0
    while pusher.poll() is None:
        pending_max = max(pending_max, notifications_sent(watch.info)["Pending"])
        time.sleep(0.5)
    assert pusher.returncode == 0
    pushed_in = time.time() - started
    wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 600, "the registry's queue to drain")
    wait_for(lambda: not watch.sql("SELECT 1 FROM tags WHERE dirty = 1"), 600, "every tag judged")
    seconds = time.time() - started
    stored = watch.events() - events0
    through_registry = {"events_ingested": stored, "pushes_seconds": round(pushed_in, 2),
                        "all_judged_seconds": round(seconds, 2), "events_per_second": round(stored / seconds, 1),
                        "registry_pending_max": pending_max, "tags_judged": judged(watch) - judged0,
                        "registry_delivered": notifications_sent(watch.info)["Successes"] - sent0["Successes"]}
    # intake capacity: the same envelopes from 32 concurrent senders while pushes run again
    template = captured_events(watch)
    pusher = stream(watch, f"bench/u{run}", max(20, tags // 4), 4)
    before = watch.events()
    direct = send_direct(watch, template, 20_000, 32)
    pusher.wait(3600)
    wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 600, "the registry's queue to drain")
    return {"through_registry": through_registry,
            "intake_capacity": {"events": direct["sent"], "seconds": round(direct["seconds"], 2),
                                "events_per_second": round(direct["sent"] / direct["seconds"], 1),
                                "stored": watch.events() - before}}


def latency(watch: Watch, run: str, count: int) -> dict[str, Any]:
    repo = f"bench/l{run}"
    steps: list[dict[str, Any]] = [{"op": "push", "repo": repo, "tag": f"v{i}", "seed": f"{run}-l{i}"}
                                   for i in range(count)]
    pushed = watch.push(steps)
    scans = [{"op": "scan", "repo": repo, "tag": f"v{i}", "digest": p["digest"], "seed": f"{run}-l{i}"}
             for i, p in enumerate(pushed)]
    watch.push(scans)
    wait_for(lambda: not watch.sql("SELECT 1 FROM tags WHERE repository = ? AND dirty = 1", repo), 120, "judged")
    lags = []
    for i, p in enumerate(pushed):
        (signed,) = watch.push([{"op": "sign", "repo": repo, "tag": f"v{i}", "digest": p["digest"]}])
        try:
            at = wait_for(lambda i=i, s=signed: watch.changed_at(repo, f"v{i}", "pass", s["done_at"] - 5), 60, "pass")
        except AssertionError:
            print(f"no pass for {repo}:v{i}: {watch.row(repo, f'v{i}')}", file=sys.stderr)
            print((Path(watch.tmp) / "watch.log").read_text()[-3000:], file=sys.stderr)
            raise
        lags.append(at - signed["done_at"])
    return {"signature_to_pass_seconds": {"n": len(lags), "p50": round(quantile(lags, 0.5), 4),
                                          "p99": round(quantile(lags, 0.99), 4), "max": round(max(lags), 4)}}


def alerts(watch: Watch, run: str, count: int, grace: float) -> dict[str, Any]:
    repo = f"bench/a{run}"
    pushed = watch.push([{"op": "push", "repo": repo, "tag": f"v{i}", "seed": f"{run}-a{i}"} for i in range(count)])
    waits = []
    for i, p in enumerate(pushed):
        def arrived(i: int = i) -> float | None:
            for line in watch.alerts_file.read_text().splitlines():
                item = json.loads(line)
                if item["path"] == "/hook" and item["body"]["subject"] == f"{repo}:v{i}":
                    return float(item["received_at"])
            return None
        waits.append(wait_for(arrived, 60, "the alert") - p["done_at"])
    return {"push_to_alert_seconds": {"grace": grace, "n": len(waits), "p50": round(quantile(waits, 0.5), 3),
                                      "p99": round(quantile(waits, 0.99), 3),
                                      "beyond_grace_p99": round(quantile(waits, 0.99) - grace, 3)}}


def kills(watch: Watch, run: str, count: int) -> dict[str, Any]:
    sent0, events0 = notifications_sent(watch.info), watch.events()
    pusher = stream(watch, f"bench/k{run}", count * 6, 4)
    rng = random.Random(14)
    done = 0
    while done < count:
        time.sleep(rng.uniform(0.3, 1.5))
        watch.kill9()
        done += 1
        time.sleep(rng.uniform(0.0, 0.5))
        watch.start()
    assert pusher.wait(3600) == 0
    wait_for(lambda: notifications_sent(watch.info)["Pending"] == 0, 600, "the registry's queue to drain")
    sent = notifications_sent(watch.info)
    queued, delivered = sent["Events"] - sent0["Events"], sent["Successes"] - sent0["Successes"]
    stored = watch.events() - events0
    return {"kills": {"kills": count, "registry_queued": queued, "registry_delivered": delivered,
                      "watcher_stored": stored, "lost": queued - stored, "double_counted": max(0, stored - queued)}}


def memory(watch: Watch, count: int) -> dict[str, Any]:
    assert watch.proc is not None
    before = rss_kb(watch.proc.pid)
    events0 = watch.events()
    template = captured_events(watch)
    direct = send_direct(watch, template, count, 32)
    wait_for(lambda: not watch.sql("SELECT 1 FROM events WHERE applied = 0"), 600, "every event applied")
    wait_for(lambda: not watch.sql("SELECT 1 FROM tags WHERE dirty = 1"), 600, "every tag judged")
    return {"memory": {"events_sent": direct["sent"], "events_stored": watch.events() - events0,
                       "rss_mb_before": round(before / 1024, 1),
                       "rss_mb_after": round(rss_kb(watch.proc.pid) / 1024, 1),
                       "events_per_second": round(direct["sent"] / direct["seconds"], 1)}}


if __name__ == "__main__":
    raise SystemExit(main())
