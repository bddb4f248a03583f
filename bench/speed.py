"""Benchmark: a whole audit as fast as the wire (issue 15), side by side in one run.

Measures, for the current code and (with --baseline REV) for an older revision of regaudit run
the same way, the whole process (wall seconds, best and median of --runs; CPU seconds user+sys
of the process and its children, which a loaded machine disturbs less):

  startup   the fixed cost of a process: the bare interpreter, `regaudit --version`, and an
            audit whose only probes are refused at once (`--select tls` on a closed loopback port)
  outside   `regaudit audit URL ...` of the hardened lab from its outsider namespace (the
            README's outside command: TLS, auth, exposure, headers, content through the API);
            its firewalled registry port is called filtered after two attempts over two
            timeouts; a second row shows `--syn-retransmit` (the patient wait: until the first
            SYN's kernel retransmission, 1 s, could have been answered)
  inside    `regaudit audit --inside ...` on the hardened lab's registry host (all its checks,
            11 tags from storage)
  tls       `regaudit audit URL --select tls` on the weak lab's Apache (TLS 1.0-1.2, 64 suites),
            next to sslscan, sslyze and testssl.sh (-p -E) on the same address from the same
            namespace
  storage   `regaudit audit --inside --select signatures,scans` over a storage of 10,011 tags
            (--storage-root; made with `python3 -m lab.content scale`, see --scale-root)
  api       `regaudit audit URL --select signatures,scans` through the proxy at 2,000 tags (the
            `speed` lab variant, scaled with --api-repos x 10), as a share of wrk's ceiling on one
            manifest through the same proxy and auth (best of --runs)
  demo      the README demo's work after set-up (scripts/demo.sh without setup.sh and with the
            labs up): both labs audited from two vantages and judged into every report format

Goals (issue 15): outside < 1 s, inside < 1 s, tls within sslscan's wall time, storage < 4 s,
api >= 85 % of the ceiling, demo < 20 s.

Usage (root, lab machine; sslscan from Debian, sslyze in /tmp/sslyze-venv: see --setup):
  python3 bench/speed.py --setup                       # apt-get install sslscan; pip install sslyze
  python3 bench/speed.py --baseline 7a06082 --runs 3   # the figures, today's next to the baseline's
  python3 bench/speed.py --only outside,inside,tls     # a subset
The baseline revision is unpacked (git archive) under /tmp/regaudit-bench/ and run with the same
interpreter and libraries through PYTHONPATH; it is never installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAB_ROOT = Path("/var/lib/regaudit-lab")
PROFILE = REPO / "tests" / "lab-profile.yaml"
SECTIONS = ("startup", "outside", "inside", "tls", "storage", "api", "demo")
FORMATS = "console,json,html,sarif,junit,markdown,prometheus"
GOALS = {"startup": "small (no goal figure)", "outside": "< 1 s", "inside": "< 1 s", "tls": "<= sslscan", "storage": "< 4 s",
         "api": ">= 85% of ceiling", "demo": "< 20 s"}
TODAY = {"startup": "0.35 s (--version)", "outside": "3.6 s", "inside": "-", "tls": "0.55 s (sslscan 0.32-0.37 s)",
         "storage": "7.1 s (walk 2.3 s)", "api": "72-80% (steady 87%)", "demo": "-"}


def _load(name: str) -> ModuleType:
    """A sibling bench script as a module (bench/tls.py, bench/content.py), loaded once."""
    key = f"bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def measured(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run argv: wall seconds, CPU seconds (user+sys, children included) and the exit code."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # Never the repository as working directory: `python -m auditor` would import the tree's
        # auditor/ from the current directory and shadow the build's PYTHONPATH.
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=cwd or tempfile.gettempdir(),
                                text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "exit": os.waitstatus_to_exitcode(status),
                "stderr": err.read()[-2000:]}


def series(runs: int, once: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """`runs` runs of `once`: best and median wall, median CPU, exit codes."""
    got = [once(n) for n in range(runs)]
    walls = [g["wall"] for g in got]
    return {"best": min(walls), "median": statistics.median(walls),
            "cpu": statistics.median(g["cpu"] for g in got), "exits": sorted({g["exit"] for g in got}),
            "stderr": got[-1]["stderr"], "runs": got}


# -- the code under test -------------------------------------------------------------------------
class Build:
    """One version of regaudit: the working tree (`current`) or an unpacked revision (`baseline`)."""

    def __init__(self, name: str, pythonpath: Path | None) -> None:
        self.name = name
        self.pythonpath = pythonpath

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGAUDIT_")}
        env["REGAUDIT_STATE_DIR"] = tempfile.mkdtemp(prefix="regaudit-bench-state-")
        if self.pythonpath is not None:
            env["PYTHONPATH"] = str(self.pythonpath)
        return {**env, **(extra or {})}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "auditor", *args]


def unpack(revision: str) -> Path:
    """The revision's sources laid out as the installed package (checks/, reports/, profiles/ under
    auditor/), under /tmp/regaudit-bench/<sha>; returns the directory for PYTHONPATH."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", revision], capture_output=True,
                         text=True, check=True).stdout.strip()
    root = Path("/tmp/regaudit-bench") / sha
    if (root / "auditor" / "__init__.py").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    src = root.with_suffix(".src")
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    root.mkdir(parents=True)
    shutil.copytree(src / "auditor", root / "auditor")
    for sub in ("checks", "reports", "profiles"):
        if (src / sub).is_dir():
            shutil.copytree(src / sub, root / "auditor" / sub, dirs_exist_ok=True)
    shutil.rmtree(src, ignore_errors=True)
    return root


# -- labs ----------------------------------------------------------------------------------------
def lab(variant: str) -> dict[str, Any]:
    up = subprocess.run([str(REPO / "tests" / "lab" / "labctl"), "up", variant], capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(f"labctl up {variant} failed: {up.stderr[-2000:]}")
    data: dict[str, Any] = json.loads((LAB_ROOT / variant / "lab.json").read_text())
    return data


def common(info: dict[str, Any]) -> list[str]:
    return ["--ca-bundle", info["tls"]["ca"], "--cosign-key", info["cosign"]["public_key"],
            "--scan-dir", info["scan_dir"], "--username", info["auth"]["username"],
            "--password-file", info["auth"]["password_file"], "--profile", str(PROFILE), "--no-progress",
            "--no-history", "--format", "json"]


def netns(info: dict[str, Any], role: str) -> list[str]:
    return ["ip", "netns", "exec", info["namespaces"][role]]


# -- sections ------------------------------------------------------------------------------------
def bench_startup(build: Build, runs: int, tmp: Path) -> dict[str, dict[str, Any]]:
    """The fixed cost of a process: the bare interpreter, `regaudit --version`, and an audit whose
    only probes are refused at once (TLS checks against a closed loopback port): what a run pays
    before its first probe and after its last, whatever the target."""
    rows = {"python -c pass": series(runs, lambda n: measured([sys.executable, "-c", "pass"], build.env()))}
    rows[f"{build.name}: --version"] = series(runs, lambda n: measured(build.argv("--version"), build.env()))
    rows[f"{build.name}: audit, refused at once"] = series(runs, lambda n: measured(build.argv(
        "audit", "https://127.0.0.1:9/", "--select", "tls", "--no-progress", "--no-history", "--format", "json",
        "--output", str(tmp / f"startup-{build.name}-{n}")), build.env()))
    return rows


def bench_outside(build: Build, runs: int, tmp: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    info = lab("hardened")
    return series(runs, lambda n: measured([*netns(info, "outsider"), *build.argv(
        "audit", info["url"], *common(info), *extra, "--output", str(tmp / f"outside-{build.name}-{n}"))],
        build.env()))


def bench_inside(build: Build, runs: int, tmp: Path) -> dict[str, Any]:
    info = lab("hardened")
    return series(runs, lambda n: measured([*netns(info, "registry"), *build.argv(
        "audit", "--inside", "--fstab", info["fstab"], *common(info),
        "--output", str(tmp / f"inside-{build.name}-{n}"))], build.env()))


def tls_target(tls_bench: ModuleType) -> Any:
    info = lab("weak")
    address = info.get("addresses", {}).get("registry", {}).get("v4") or "10.0.0.10"
    return info, tls_bench.Target("lab weak (Apache)", info["hostname"], address, 443, netns(info, "ci"),
                                  info["tls"]["ca"])


def bench_tls(build: Build, runs: int, tmp: Path) -> dict[str, Any]:
    info, _target = tls_target(_load("tls"))
    return series(runs, lambda n: measured([*netns(info, "ci"), *build.argv(
        "audit", info["url"], "--ca-bundle", info["tls"]["ca"], "--select", "tls", "--no-progress", "--no-history",
        "--format", "json", "--output", str(tmp / f"tls-{build.name}-{n}"))], build.env()))


def bench_tls_peers(runs: int, tmp: Path) -> dict[str, dict[str, Any]]:
    """sslscan, sslyze and testssl.sh (-p -E: protocols and every cipher) on the same target."""
    tls_bench = _load("tls")
    _info, target = tls_target(tls_bench)
    out: dict[str, dict[str, Any]] = {}
    for tool, fn, n in (("sslscan", tls_bench.run_sslscan, runs), ("sslyze", tls_bench.run_sslyze, runs),
                        ("testssl.sh -p -E", tls_bench.run_testssl, 1)):
        if not tls_bench.available(tool.split()[0].replace(".sh", "")):
            out[tool] = {"note": "not installed (python3 bench/speed.py --setup)"}
            continue
        walls = []
        for _ in range(n):
            before = os.times()
            run = fn(target, tmp)
            after = os.times()
            walls.append((run.wall, (after.children_user - before.children_user)
                          + (after.children_system - before.children_system)))
        out[tool] = {"best": min(w for w, _ in walls), "median": statistics.median(w for w, _ in walls),
                     "cpu": statistics.median(c for _, c in walls), "runs": n}
    return out


def bench_storage(build: Build, runs: int, tmp: Path, scale_root: Path) -> dict[str, Any]:
    storage = scale_root / "registry" / "storage"
    if not (storage / "docker/registry/v2/repositories").is_dir():
        return {"note": f"no scaled storage at {storage} (--scale-root; python3 -m lab.content scale)"}
    tags = sum(1 for _ in (storage / "docker/registry/v2/repositories").glob("*/*/_manifests/tags/*")) + \
        sum(1 for _ in (storage / "docker/registry/v2/repositories").glob("*/_manifests/tags/*"))

    def once(n: int) -> dict[str, Any]:
        out = tmp / f"storage-{build.name}-{n}"
        run = measured(build.argv("audit", "--inside", "--storage-root", str(storage), "--cosign-key",
                                  str(scale_root / "pki" / "cosign.pub"), "--scan-dir", str(scale_root / "scans"),
                                  "--select", "signatures,scans", "--no-progress", "--no-history", "--format", "json",
                                  "--output", str(out), "--evidence-out", str(out / "evidence.json"),
                                  "--deadline", "1800"), build.env())
        try:
            value = json.loads((out / "evidence.json").read_text())["probes"]["registry.content"]["value"]
            run["tags"] = len(value["tags"])
            run["walk"] = value["stats"]["seconds"]
        except (OSError, KeyError, ValueError, TypeError):
            run["tags"], run["walk"] = None, None
        return run
    result = series(runs, once)
    result["tags_in_storage"] = tags
    result["tags"] = result["runs"][-1]["tags"]
    result["walk"] = min((r["walk"] for r in result["runs"] if r["walk"]), default=None)
    return result


def bench_api(build: Build, runs: int, tmp: Path, variant: str, repos: int, wrk_seconds: int) -> dict[str, Any]:
    content = _load("content")
    info = lab(variant)
    password = Path(info["auth"]["password_file"]).read_text().strip()
    repositories = Path(info["registry"]["storage_root"]) / "docker/registry/v2/repositories" / "scale"
    have = len(list(repositories.glob("repo-*"))) if repositories.is_dir() else 0
    if have < repos:
        pushed = content.scale(info, repos, 10, "scale")
        print(f"   scaled {variant} to {repos} x 10 in {pushed['seconds']} s", file=sys.stderr)
    manifest = "/v2/scale/repo-0000/manifests/v0"
    ceilings = []
    walks = []
    for n in range(runs):
        ceilings.append(max(v["rps"] for v in content.wrk_ceiling(info, password, manifest, wrk_seconds, 32,
                                                                  tmp).values()))
        out = tmp / f"api-{build.name}-{n}"
        env = {**build.env(), "REGAUDIT_USERNAME": info["auth"]["username"], "REGAUDIT_PASSWORD": password}
        run = measured([*netns(info, "ci"), *build.argv(
            "audit", info["url"], "--ca-bundle", info["tls"]["ca"], "--cosign-key", info["cosign"]["public_key"],
            "--scan-dir", info["scan_dir"], "--select", "signatures,scans", "--no-progress", "--no-history",
            "--format", "json", "--output", str(out), "--evidence-out", str(out / "evidence.json"),
            "--deadline", "1800")], env)
        value = json.loads((out / "evidence.json").read_text())["probes"]["registry.content"]["value"]
        stats = value["stats"]
        requests = sum(stats.get("requests", {}).values()) + stats.get("token_requests", 0)
        walks.append({**run, "tags": len(value["tags"]), "requests": requests, "walk": stats["seconds"]})
    ceiling = statistics.median(ceilings)
    shares = [w["requests"] / w["wall"] / ceiling for w in walks]
    steady = [w["requests"] / w["walk"] / ceiling for w in walks]
    return {"best": min(w["wall"] for w in walks), "median": statistics.median(w["wall"] for w in walks),
            "cpu": statistics.median(w["cpu"] for w in walks), "exits": sorted({w["exit"] for w in walks}),
            "tags": walks[-1]["tags"], "requests": walks[-1]["requests"], "ceiling_rps": ceiling,
            "share_best": max(shares), "steady_best": max(steady), "runs": walks}


def bench_demo(build: Build, runs: int, tmp: Path) -> dict[str, Any]:
    """scripts/demo.sh's steps, labs already up (set-up excluded), timed as one whole."""
    infos = {variant: lab(variant) for variant in ("hardened", "weak")}

    def once(n: int) -> dict[str, Any]:
        started = time.perf_counter()
        cpu = 0.0
        exits = []
        for variant, info in infos.items():
            out = tmp / f"demo-{build.name}-{n}" / variant
            (out / "evidence").mkdir(parents=True, exist_ok=True)
            env = build.env()
            steps = [
                [*netns(info, "outsider"), *build.argv("audit", info["url"], *common(info), "--evidence-out",
                                                       str(out / "evidence/outside.json"),
                                                       "--output", str(out / "evidence/outside"))],
                [*netns(info, "registry"), *build.argv("audit", "--inside", "--fstab", info["fstab"], *common(info),
                                                       "--evidence-out", str(out / "evidence/inside.json"),
                                                       "--output", str(out / "evidence/inside"))],
                build.argv("evaluate", str(out / "evidence/outside.json"), str(out / "evidence/inside.json"),
                           "--profile", str(PROFILE), "--format", FORMATS, "--output", str(out)),
            ]
            for argv in steps:
                run = measured(argv, env)
                cpu += run["cpu"]
                exits.append(run["exit"])
        return {"wall": time.perf_counter() - started, "cpu": cpu, "exit": max(exits), "stderr": ""}
    return series(runs, once)


# -- output --------------------------------------------------------------------------------------
def _fmt(result: dict[str, Any] | None) -> str:
    if not result:
        return "-"
    if "note" in result:
        return str(result["note"])
    text = f"best {result['best']:.3f} s, median {result['median']:.3f} s, cpu {result['cpu']:.2f} s"
    if "share_best" in result:
        text += (f"; {100 * result['share_best']:.0f}% of ceiling ({result['ceiling_rps']:.0f} req/s), "
                 f"steady {100 * result['steady_best']:.0f}%; {result['tags']} tags")
    elif result.get("tags") is not None:
        text += f"; {result['tags']} tags, walk {result['walk']} s"
    if result.get("exits") and result["exits"] != [0] and "share_best" not in result:
        text += f"; exit {result['exits']}"
    return text


def setup() -> int:
    """The comparison tools: sslscan (Debian) and sslyze (PyPI, its own venv in /tmp/sslyze-venv)."""
    if shutil.which("sslscan") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "sslscan"], check=True)
    venv = Path("/tmp/sslyze-venv")
    if not (venv / "bin" / "sslyze").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "sslyze"], check=True)
    print("sslscan:", shutil.which("sslscan"), "sslyze:", venv / "bin" / "sslyze",
          "testssl:", shutil.which("testssl") or shutil.which("testssl.sh"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also run this git revision the same way (today's figure)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--scale-root", type=Path, default=Path("/var/lib/regaudit-i15/scale10k"),
                        help="a lab base directory whose storage holds the 10,011 tags (moved out of the lab root "
                        "after `labctl up speed` and `python3 -m lab.content scale --repos 1000 --tags 10`)")
    parser.add_argument("--api-variant", default="speed")
    parser.add_argument("--api-repos", type=int, default=200, help="repositories of 10 tags for the API run")
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--setup", action="store_true", help="install sslscan and sslyze, then exit")
    args = parser.parse_args()
    if args.setup:
        return setup()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    builds = [Build("current", None)]
    if args.baseline:
        builds.append(Build(f"baseline {args.baseline}", unpack(args.baseline)))
    # As an installed package is: byte-compiled (pip compiles on install; this machine's
    # PYTHONDONTWRITEBYTECODE=1 would otherwise make every run compile ~100 modules again).
    for folder in [REPO / d for d in ("auditor", "checks", "reports", "profiles")] + \
            [b.pythonpath for b in builds if b.pythonpath is not None]:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=False, capture_output=True)
    load = os.getloadavg()
    results: dict[str, Any] = {"load_average": load, "cpus": os.cpu_count(), "sections": {}}
    with tempfile.TemporaryDirectory(prefix="regaudit-speed-") as workdir:
        tmp = Path(workdir)
        for section in wanted:
            results["sections"][section] = {}
            for build in builds:
                print(f"== {section}: {build.name}", file=sys.stderr)
                if section == "startup":
                    rows = bench_startup(build, args.runs, tmp)
                    for row in rows.values():
                        row.pop("runs", None)
                    results["sections"][section].update(rows)
                    continue
                if section == "outside":
                    got = bench_outside(build, args.runs, tmp)
                elif section == "inside":
                    got = bench_inside(build, args.runs, tmp)
                elif section == "tls":
                    got = bench_tls(build, args.runs, tmp)
                elif section == "storage":
                    got = bench_storage(build, args.runs, tmp, args.scale_root)
                elif section == "api":
                    got = bench_api(build, args.runs, tmp, args.api_variant, args.api_repos, args.wrk_seconds)
                else:
                    got = bench_demo(build, 1, tmp)
                got.pop("runs", None)
                results["sections"][section][build.name] = got
                if section == "outside" and build.pythonpath is None:  # the patient wait, for comparison
                    patient = bench_outside(build, args.runs, tmp, ("--syn-retransmit",))
                    patient.pop("runs", None)
                    results["sections"][section][f"{build.name}, --syn-retransmit"] = patient
            if section == "tls":
                print("== tls: sslscan, sslyze, testssl.sh", file=sys.stderr)
                results["sections"]["tls"].update(bench_tls_peers(args.runs, tmp))
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs "
          "(wall times on a loaded machine are upper bounds; CPU = user+sys of the whole process)")
    for section, rows in results["sections"].items():
        print(f"\n{section}: goal {GOALS[section]}; issue's figure {TODAY[section]}")
        for name, result in rows.items():
            print(f"  {name:34} {_fmt(result)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
