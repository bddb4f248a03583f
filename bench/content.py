"""Benchmark of the content audit on the lab scaled to N repositories x M tags (issue 6).

Measures in one run, side by side, on the same registry:
  1. the guide's sequential curl loop (catalog, tags/list, and per tag the three requests a content
     audit needs: manifest, signature manifest, signature payload), through the TLS proxy with auth,
     on a sample of repositories (--curl-repos; its rate is what matters, the full run would take
     minutes);
  2. `regaudit audit <url> --select signatures,scans` from the ci namespace, through the proxy with auth;
  3. `regaudit audit --inside --select signatures,scans` from the registry host's storage;
  4. the proxy's raw request ceiling: wrk against one manifest through the same proxy and auth.
For each: wall time, requests/s, tags/s, peak RSS, requests per tag. With --steps the regaudit
runs are repeated at each scale (e.g. 100,1000 repositories) to show how time grows.

Usage (root, lab machine):
  python3 bench/content.py --variant firewall --repos 1000 --tags 10 --steps 100,1000
Scale content is pushed with `python3 -m lab.content scale` (tests/lab/content) and removed from
the registry's storage and scan directory afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
ACCEPT = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; wall seconds and the peak RSS of that process (wait4 rusage, KiB on Linux)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "exit": proc.returncode,
                "cpu": usage.ru_utime + usage.ru_stime,
                "stdout": out.read(), "stderr": err.read()}


def lab_info(variant: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(f"/var/lib/regaudit-lab/{variant}/lab.json").read_text())
    return data


def scale(lab: dict[str, Any], repos: int, tags: int, prefix: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    cmd = ["ip", "netns", "exec", lab["namespaces"]["registry"], sys.executable, "-m", "lab.content", "scale",
           lab["state_file"], "--repos", str(repos), "--tags", str(tags), "--prefix", prefix, "--concurrency", "32"]
    proc = sh(cmd, env=env, cwd=str(TESTS))
    if proc.returncode != 0:
        raise SystemExit(f"scale failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def cleanup(lab: dict[str, Any], prefix: str) -> None:
    storage = Path(lab["registry"]["storage_root"]) / "docker/registry/v2/repositories" / prefix
    shutil.rmtree(storage, ignore_errors=True)
    for report in Path(lab["scan_dir"]).glob(f"{prefix}_repo-*.json"):
        report.unlink(missing_ok=True)
    (Path(lab["base_dir"]) / "scale.json").unlink(missing_ok=True)


def regaudit_api(lab: dict[str, Any], password: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "REGAUDIT_USERNAME": lab["auth"]["username"], "REGAUDIT_PASSWORD": password}
    cmd = ["ip", "netns", "exec", lab["namespaces"]["ci"], "regaudit", "audit", lab["url"],
           "--ca-bundle", lab["tls"]["ca"], "--cosign-key", lab["cosign"]["public_key"],
           "--scan-dir", lab["scan_dir"], "--select", "signatures,scans", "--no-progress", "--format", "json",
           "--output", str(out), "--evidence-out", str(out / "evidence.json"), "--deadline", "1800"]
    return _regaudit(cmd, env, out)


def regaudit_storage(lab: dict[str, Any], out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}
    cmd = ["ip", "netns", "exec", lab["namespaces"]["registry"], "regaudit", "audit", "--inside",
           "--registry-config", lab["registry"]["config"], "--cosign-key", lab["cosign"]["public_key"],
           "--scan-dir", lab["scan_dir"], "--select", "signatures,scans", "--no-progress", "--format", "json",
           "--output", str(out), "--evidence-out", str(out / "evidence.json"), "--deadline", "1800"]
    return _regaudit(cmd, env, out)


def _regaudit(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    run = measured(cmd, env)
    evidence = json.loads((out / "evidence.json").read_text())
    probe = evidence["probes"]["registry.content"]
    if probe["state"] != "ok":
        raise SystemExit(f"registry.content failed: {probe['reason']}\n{run['stderr'][-2000:]}")
    value = probe["value"]
    report = json.loads((out / "regaudit.json").read_text())
    statuses: dict[str, int] = {}
    for result in report["results"]:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    stats = value["stats"]
    requests = sum(stats.get("requests", {}).values()) + stats.get("token_requests", 0)
    tags = len(value["tags"])
    return {"wall": run["wall"], "rss_mb": run["rss_mb"], "exit": run["exit"], "tags": tags, "cpu": run["cpu"],
            "walk_seconds": stats["seconds"], "probe_seconds": probe["seconds"], "requests": requests,
            "requests_per_tag": stats.get("requests_per_tag", stats.get("reads_per_tag")),
            "file_reads": stats.get("file_reads"), "statuses": statuses}


CURL_LOOP = r"""
set -u
B="https://$HOST"
C="curl -s --netrc-file $NETRC --cacert $CA"
N=0
repos=$($C "$B/v2/_catalog?n=1000" | jq -r '.repositories[]' | grep "^$PREFIX/" | head -n "$MAXREPOS")
N=$((N+1))
for repo in $repos; do
  tags=$($C "$B/v2/$repo/tags/list" | jq -r '.tags[]' | grep -v '^sha256-')
  N=$((N+1))
  for tag in $tags; do
    digest=$($C -o /dev/null -D - -H "Accept: $ACCEPT" "$B/v2/$repo/manifests/$tag" \
      | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    sig=$($C -H "Accept: $ACCEPT" "$B/v2/$repo/manifests/sha256-${digest#sha256:}.sig")
    payload=$(echo "$sig" | jq -r '.layers[0].digest')
    $C -o /dev/null "$B/v2/$repo/blobs/$payload"
    N=$((N+3)); T=$((T+1))
  done
done
echo "requests=$N tags=$T"
"""


def curl_loop(lab: dict[str, Any], password: str, prefix: str, max_repos: int, tmp: Path) -> dict[str, Any]:
    netrc = tmp / "netrc"
    netrc.write_text(f"machine {lab['hostname']} login {lab['auth']['username']} password {password}\n")
    netrc.chmod(0o600)
    script = tmp / "loop.sh"
    script.write_text("T=0\n" + CURL_LOOP)
    env = {**os.environ, "HOST": lab["hostname"], "NETRC": str(netrc), "CA": lab["tls"]["ca"], "PREFIX": prefix,
           "MAXREPOS": str(max_repos), "ACCEPT": ACCEPT}
    run = measured(["ip", "netns", "exec", lab["namespaces"]["ci"], "bash", str(script)], env)
    match = re.search(r"requests=(\d+) tags=(\d+)", run["stdout"])
    if not match:
        raise SystemExit(f"curl loop failed: {run['stdout'][-500:]} {run['stderr'][-1000:]}")
    return {"wall": run["wall"], "requests": int(match.group(1)), "tags": int(match.group(2)),
            "rss_mb": run["rss_mb"]}


WRK_SCRIPT = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Basic {auth}"
wrk.headers["Accept"] = "{accept}"
"""


def wrk_ceiling(lab: dict[str, Any], password: str, path: str, seconds: int, conns: int, tmp: Path) -> dict[str, Any]:
    auth = base64.b64encode(f"{lab['auth']['username']}:{password}".encode()).decode()
    script = tmp / "auth.lua"
    script.write_text(WRK_SCRIPT.format(auth=auth, accept=ACCEPT))
    script.chmod(0o600)
    out: dict[str, Any] = {}
    for c in sorted({1, conns}):
        proc = sh(["ip", "netns", "exec", lab["namespaces"]["ci"], "wrk", "-t", str(min(2, c)), "-c", str(c),
                   "-d", f"{seconds}s", "-s", str(script), f"https://{lab['hostname']}{path}"])
        rps = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
        if not rps:
            raise SystemExit(f"wrk failed: {proc.stdout} {proc.stderr}")
        out[f"c{c}"] = {"rps": float(rps.group(1)), "non_2xx": int(non2xx.group(1)) if non2xx else 0}
    return out


def payload_path(lab: dict[str, Any], password: str, repo: str, tag: str) -> str:
    """The blob path of `repo:tag`'s signature payload (the walk's third request per tag)."""
    auth = "Basic " + base64.b64encode(f"{lab['auth']['username']}:{password}".encode()).decode()
    base = f"https://{lab['hostname']}/v2/{repo}"

    def get(path: str, dump_headers: bool = False) -> str:
        cmd = ["ip", "netns", "exec", lab["namespaces"]["ci"], "curl", "-sf", "--cacert", lab["tls"]["ca"],
               "-H", f"Accept: {ACCEPT}", "-H", "@-", *(["-D", "-", "-o", "/dev/null"] if dump_headers else []),
               f"{base}/{path}"]
        proc = subprocess.run(cmd, input=f"Authorization: {auth}\n", text=True, capture_output=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"GET {path}: curl exit {proc.returncode}")
        return proc.stdout

    headers = get(f"manifests/{tag}", dump_headers=True)
    digest = re.search(r"(?im)^docker-content-digest:\s*(\S+)", headers)
    if not digest:
        raise SystemExit(f"{repo}:{tag}: no Docker-Content-Digest")
    signature = json.loads(get(f"manifests/sha256-{digest.group(1).split(':', 1)[1]}.sig"))
    return f"/v2/{repo}/blobs/{signature['layers'][0]['digest']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="firewall", help="lab variant with a TLS proxy and auth")
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--steps", default="", help="comma list of repository counts to measure at (linearity)")
    parser.add_argument("--prefix", default="scale")
    parser.add_argument("--curl-repos", type=int, default=30, help="repositories the curl loop walks (sample)")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="leave the scale content in the lab")
    parser.add_argument("--no-scale", action="store_true", help="the lab is already scaled")
    args = parser.parse_args()

    up = sh([str(TESTS / "lab" / "labctl"), "up", args.variant])
    if up.returncode != 0:
        raise SystemExit(f"labctl up {args.variant} failed: {up.stderr[-2000:]}")
    lab = lab_info(args.variant)
    if lab["auth"].get("scheme") not in ("basic", "token"):
        raise SystemExit(f"variant {args.variant} has no proxy auth; use hardened or firewall")
    password = Path(lab["auth"]["password_file"]).read_text().strip()
    steps = [int(s) for s in args.steps.split(",") if s.strip()] or [args.repos]
    results: dict[str, Any] = {"variant": args.variant, "tags_per_repo": args.tags, "steps": []}
    tmp = Path(tempfile.mkdtemp(prefix="regaudit-bench-"))
    try:
        for repos in steps:
            if not args.no_scale:
                pushed = scale(lab, repos, args.tags, args.prefix)
                print(f"scaled to {repos} x {args.tags}: {pushed['seconds']}s ({pushed['tags_per_second']} tags/s)",
                      file=sys.stderr)
            manifest = f"/v2/{args.prefix}/repo-0000/manifests/v0"
            payload = payload_path(lab, password, f"{args.prefix}/repo-0000", "v0")
            blob = wrk_ceiling(lab, password, payload, args.wrk_seconds, args.wrk_connections, tmp)
            before = wrk_ceiling(lab, password, manifest, args.wrk_seconds, args.wrk_connections, tmp)
            api = regaudit_api(lab, password, tmp / f"api-{repos}")
            after = wrk_ceiling(lab, password, manifest, args.wrk_seconds, args.wrk_connections, tmp)
            disk = regaudit_storage(lab, tmp / f"disk-{repos}")
            wrk = {k: {"rps": (before[k]["rps"] + after[k]["rps"]) / 2,
                       "non_2xx": before[k]["non_2xx"] + after[k]["non_2xx"],
                       "before": before[k]["rps"], "after": after[k]["rps"]} for k in before}
            results["steps"].append({"repos": repos, "api": api, "storage": disk, "wrk": wrk,
                                     "wrk_payload": blob[f"c{args.wrk_connections}"]["rps"]})
        results["curl_loop"] = curl_loop(lab, password, args.prefix, args.curl_repos, tmp)
        results["wrk"] = results["steps"][-1]["wrk"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.keep and not args.no_scale:
            cleanup(lab, args.prefix)
    report(results, args)
    return 0


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    ceiling = max(v["rps"] for v in results["wrk"].values())
    rows = []
    curl = results["curl_loop"]
    rows.append(("curl loop (guide, sequential; sample)", curl["tags"], curl["wall"], curl["requests"],
                 curl["requests"] / curl["wall"], curl["tags"] / curl["wall"], curl["rss_mb"],
                 curl["requests"] / max(1, curl["tags"])))
    for step in results["steps"]:
        api, disk = step["api"], step["storage"]
        rows.append((f"regaudit API ({step['repos']} repos)", api["tags"], api["wall"], api["requests"],
                     api["requests"] / api["walk_seconds"], api["tags"] / api["wall"], api["rss_mb"],
                     api["requests_per_tag"]))
        rows.append((f"regaudit storage ({step['repos']} repos)", disk["tags"], disk["wall"], disk["file_reads"],
                     disk["file_reads"] / max(disk["walk_seconds"], 1e-6), disk["tags"] / disk["wall"],
                     disk["rss_mb"], disk["requests_per_tag"]))
    print(f"{'run':42} {'tags':>6} {'wall s':>8} {'requests':>9} {'req/s':>8} {'tags/s':>8} {'RSS MB':>7} "
          f"{'req/tag':>7}")
    for name, tags, wall, req, rps, tps, rss, rpt in rows:
        print(f"{name:42} {tags:6d} {wall:8.2f} {req:9d} {rps:8.1f} {tps:8.1f} {rss:7.1f} {rpt:7.2f}")
    for step in results["steps"]:
        for name, value in step["wrk"].items():
            print(f"wrk ceiling ({step['repos']} repos), one manifest, {name:>4} connections: {value['rps']:.1f} "
                  f"requests/s (before the API run {value['before']:.1f}, after {value['after']:.1f}; "
                  f"non-2xx {value['non_2xx']})")
        mix = 1 / ((2 / 3) / step["wrk"][f"c{args.wrk_connections}"]["rps"] + (1 / 3) / step["wrk_payload"])
        print(f"wrk ceiling ({step['repos']} repos), one signature payload blob, {args.wrk_connections} connections: "
              f"{step['wrk_payload']:.1f} requests/s; for the walk's mix (2/3 manifests, 1/3 payload blobs): "
              f"{mix:.1f} requests/s")
        api = step["api"]
        print(f"regaudit API ({step['repos']} repos): {api['cpu']:.1f}s CPU for {api['requests']} requests "
              f"({1000 * api['cpu'] / api['requests']:.2f} ms CPU per request, client side)")
    last = results["steps"][-1]["api"]
    print(f"regaudit API walk: {last['requests'] / last['walk_seconds']:.1f} requests/s = "
          f"{100 * last['requests'] / last['walk_seconds'] / ceiling:.0f}% of the wrk ceiling ({ceiling:.1f}/s)")
    print(f"storage walk of {results['steps'][-1]['storage']['tags']} tags: "
          f"{results['steps'][-1]['storage']['walk_seconds']:.2f}s in the probe, "
          f"{results['steps'][-1]['storage']['wall']:.2f}s wall for the whole audit")
    print(json.dumps({k: v for k, v in results.items()}, default=str))


if __name__ == "__main__":
    sys.exit(main())
