"""Benchmark: regaudit's wire-level TLS enumeration versus testssl.sh, sslscan and sslyze.

Targets: a hardened-like nginx (TLS 1.2 with the guide's 2 suites + TLS 1.3) and a weak-like
`openssl s_server` (TLS 1.0-1.3, every suite at SECLEVEL=0) started here on loopback, plus the
lab's Apache (hardened, weak) when those labs are up (tools then run in the lab's ci namespace,
and TCP connections are counted with an iptables rule there).

Per target and tool: median wall time of the whole process over --runs runs, the scan's own
time where the tool reports it, TCP connections (lab only, and regaudit's own count), and
whether the tool's protocol and cipher lists equal regaudit's.

Usage: python bench/tls.py [--runs 5] [--slow-runs 1] [--no-lab] [--no-local] [--tools ...]
sslyze is looked up as `sslyze` on PATH or in /tmp/sslyze-venv (pip install sslyze in its own
venv; it is not a project dependency).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tlspeer.compare import from_prober, from_testssl, testssl_argv  # noqa: E402
from tlspeer.servers import nginx, nginx_available, s_server, write_pki  # noqa: E402

from auditor.judge.suites import lookup  # noqa: E402
from auditor.tlsprobe.records import SSLV2_CIPHERS  # noqa: E402

SSLYZE_VERSIONS = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3",
                   "tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
                   "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}
SSLSCAN_VERSIONS = {("ssl", "2"): "SSLv2", ("ssl", "3"): "SSLv3", ("tls", "1.0"): "TLSv1.0",
                    ("tls", "1.1"): "TLSv1.1", ("tls", "1.2"): "TLSv1.2", ("tls", "1.3"): "TLSv1.3"}
SSLSCAN_CIPHER_VERSIONS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLSv1.0": "TLSv1.0", "TLSv1.1": "TLSv1.1",
                           "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
SSLV2_BY_NAME = {v: k for k, v in SSLV2_CIPHERS.items()}


@dataclass
class Target:
    name: str
    host: str           # SNI / certificate name
    address: str        # the address every tool scans
    port: int
    prefix: list[str] = field(default_factory=list)   # e.g. ip netns exec NS
    ca: str | None = None
    count_connections: bool = False


@dataclass
class Run:
    wall: float
    inner: float | None
    connections: int | None
    facts: dict[str, Any] | None


def _sslyze_binary() -> str | None:
    found = shutil.which("sslyze")
    if found:
        return found
    venv = Path("/tmp/sslyze-venv/bin/sslyze")
    return str(venv) if venv.exists() else None


@contextmanager
def _syn_counter(target: Target) -> Iterator[Callable[[], int]]:
    """Counts TCP SYNs to the target from the target's namespace (iptables OUTPUT rule)."""
    tool = "ip6tables" if ":" in target.address else "iptables"
    rule = ["OUTPUT", "-p", "tcp", "--syn", "-d", target.address, "--dport", str(target.port), "-j", "ACCEPT"]
    subprocess.run([*target.prefix, tool, "-I", *rule], check=True, capture_output=True)

    def read() -> int:
        out = subprocess.run([*target.prefix, tool, "-L", "OUTPUT", "-v", "-x", "-n", "-Z"], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[2] == "ACCEPT" and target.address in line and \
                    f"dpt:{target.port}" in line:
                return int(fields[0])
        return -1
    try:
        read()
        yield read
    finally:
        subprocess.run([*target.prefix, tool, "-D", *rule], check=False, capture_output=True)


def _timed(argv: Sequence[str], timeout: float = 900.0) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    return time.perf_counter() - start


def run_regaudit(target: Target, tmp: Path) -> Run:
    argv = [*target.prefix, sys.executable, "-m", "auditor.tlsprobe", target.host, str(target.port),
            "--address", target.address, "--no-certificates"]
    start = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    wall = time.perf_counter() - start
    result = json.loads(cp.stdout)
    return Run(wall, result["elapsed_s"], result["handshakes"], from_prober(result["addresses"][0]))


def run_testssl(target: Target, tmp: Path, extra: Sequence[str] = ("-p", "-E")) -> Run:
    jsonfile = tmp / f"testssl-{time.monotonic_ns()}.json"
    wall = _timed([*target.prefix, *testssl_argv(f"{target.host}:{target.port}", str(jsonfile),
                                                 ip=target.address, extra=extra)])
    entries = json.loads(jsonfile.read_text())
    inner = next((float(e["finding"]) for e in entries if e.get("id") == "scanTime"
                  and str(e.get("finding")).isdigit()), None)
    return Run(wall, inner, None, from_testssl(entries) if list(extra) == ["-p", "-E"] else None)


def run_testssl_default(target: Target, tmp: Path) -> Run:
    return run_testssl(target, tmp, extra=())


def run_sslscan(target: Target, tmp: Path) -> Run:
    xml_file = tmp / f"sslscan-{time.monotonic_ns()}.xml"
    address = f"[{target.address}]" if ":" in target.address else target.address
    wall = _timed([*target.prefix, "sslscan", "--no-colour", f"--xml={xml_file}", f"--sni-name={target.host}",
                   f"{address}:{target.port}"])
    root = ET.parse(xml_file).getroot()
    protocols: dict[str, bool | str] = {}
    suites: dict[str, set[int]] = {}
    for proto in root.iter("protocol"):
        version = SSLSCAN_VERSIONS.get((proto.get("type", ""), proto.get("version", "")))
        if version:
            protocols[version] = proto.get("enabled") == "1"
    for cipher in root.iter("cipher"):
        version = SSLSCAN_CIPHER_VERSIONS.get(cipher.get("sslversion", ""))
        code = cipher.get("id")
        if version and code:
            suites.setdefault(version, set()).add(int(code, 16))
    return Run(wall, None, None, {"protocols": protocols, "suites": suites})


def run_sslyze(target: Target, tmp: Path) -> Run:
    binary = _sslyze_binary()
    assert binary is not None
    out = tmp / f"sslyze-{time.monotonic_ns()}.json"
    address = f"[{target.address}]" if ":" in target.address else target.address
    argv = [*target.prefix, binary, "--quiet", "--json_out", str(out), "--sslv2", "--sslv3", "--tlsv1",
            "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", f"{target.host}:{target.port}{{{address}}}"]
    wall = _timed(argv)
    data = json.loads(out.read_text())
    result = data["server_scan_results"][0]["scan_result"]
    protocols: dict[str, bool | str] = {}
    suites: dict[str, set[int]] = {}
    for key, version in SSLYZE_VERSIONS.items():
        entry = result.get(key) or {}
        if entry.get("status") != "COMPLETED":
            protocols[version] = f"sslyze: {entry.get('status')}"
            continue
        accepted = entry["result"]["accepted_cipher_suites"]
        protocols[version] = bool(accepted)
        for item in accepted:
            name = item["cipher_suite"]["name"]
            suite = lookup(name)
            code = suite.code if suite else SSLV2_BY_NAME.get(name, -1)
            suites.setdefault(version, set()).add(code)
    return Run(wall, None, None, {"protocols": protocols, "suites": suites})


TOOLS: dict[str, Callable[[Target, Path], Run]] = {
    "regaudit": run_regaudit,
    "testssl -p -E": run_testssl,
    "testssl default": run_testssl_default,
    "sslscan": run_sslscan,
    "sslyze": run_sslyze,
}
SLOW = {"testssl default"}


def available(tool: str) -> bool:
    if tool.startswith("testssl"):
        return shutil.which("testssl") is not None or shutil.which("testssl.sh") is not None
    if tool == "sslscan":
        return shutil.which("sslscan") is not None
    if tool == "sslyze":
        return _sslyze_binary() is not None
    return True


def _agreement(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    if theirs is None or ours is None:
        return "-"
    if ours == theirs:
        return "same"
    diffs = []
    for version in sorted(set(ours["protocols"]) | set(theirs["protocols"])):
        a, b = ours["protocols"].get(version), theirs["protocols"].get(version)
        if a != b:
            diffs.append(f"{version}: ours {a} theirs {b}")
        sa, sb = ours["suites"].get(version, set()), theirs["suites"].get(version, set())
        if sa != sb:
            only_ours = sorted(f"0x{c:04X}" for c in sa - sb)
            only_theirs = sorted(f"0x{c:04X}" for c in sb - sa)
            diffs.append(f"{version} suites: only ours {only_ours} only theirs {only_theirs}")
    return "differs: " + "; ".join(diffs)


def bench_target(target: Target, tools: Sequence[str], runs: int, slow_runs: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        counter = stack.enter_context(_syn_counter(target)) if target.count_connections else None
        for tool in tools:
            if not available(tool):
                rows.append({"target": target.name, "tool": tool, "note": "not installed"})
                continue
            samples: list[Run] = []
            for _ in range(slow_runs if tool in SLOW else runs):
                if counter:
                    counter()
                sample = TOOLS[tool](target, tmp)
                if counter:
                    sample.connections = counter()
                samples.append(sample)
            last = samples[-1]
            if tool == "regaudit":
                reference = last.facts
            inner = [s.inner for s in samples if s.inner is not None]
            rows.append({
                "target": target.name, "tool": tool, "runs": len(samples),
                "wall_median_s": round(statistics.median(s.wall for s in samples), 3),
                "inner_median_s": round(statistics.median(inner), 3) if inner else None,
                "connections": last.connections,
                "suites": sum(len(v) for v in last.facts["suites"].values()) if last.facts else None,
                "agrees_with_regaudit": "reference" if tool == "regaudit" else _agreement(reference, last.facts),
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


def local_targets(stack: ExitStack, workdir: Path) -> list[Target]:
    pki = write_pki(workdir / "pki")
    targets = []
    if nginx_available():
        port = stack.enter_context(nginx(pki, workdir / "nginx"))
        targets.append(Target("local hardened (nginx)", "localhost", "127.0.0.1", port))
    port = stack.enter_context(s_server(pki, ["-cipher", "ALL:@SECLEVEL=0", "-min_protocol", "TLSv1",
                                              "-serverpref"]))
    targets.append(Target("local weak (s_server)", "localhost", "127.0.0.1", port))
    return targets


def lab_targets() -> list[Target]:
    try:
        import lab
    except ImportError:
        return []
    from urllib.parse import urlsplit
    targets = []
    for variant in ("hardened", "weak"):
        if lab.available() is not None or not lab.is_up(variant):
            continue
        info = lab.load(variant)
        host = urlsplit(info.url).hostname or ""
        address = info.raw.get("addresses", {}).get("registry", {}).get("v4") or "10.0.0.10"
        targets.append(Target(f"lab {variant} (Apache)", host, address, 443,
                              ["ip", "netns", "exec", info.namespaces["ci"]], str(info.ca), True))
    return targets


def _table(rows: Sequence[dict[str, Any]]) -> str:
    head = f"{'target':26} {'tool':16} {'runs':>4} {'wall med s':>10} {'scan med s':>10} {'conns':>6} " \
           f"{'suites':>6}  agrees"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "note" in r:
            lines.append(f"{r['target']:26} {r['tool']:16} {r['note']}")
            continue
        lines.append(f"{r['target']:26} {r['tool']:16} {r['runs']:>4} {r['wall_median_s']:>10.3f} "
                     f"{r['inner_median_s'] if r['inner_median_s'] is not None else '-':>10} "
                     f"{r['connections'] if r['connections'] is not None else '-':>6} "
                     f"{r['suites'] if r['suites'] is not None else '-':>6}  {r['agrees_with_regaudit']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of testssl's default (full) run")
    parser.add_argument("--no-lab", action="store_true")
    parser.add_argument("--no-local", action="store_true")
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=list(TOOLS))
    args = parser.parse_args()
    tools = ["regaudit", *[t for t in args.tools if t != "regaudit"]]
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        targets = [] if args.no_local else local_targets(stack, Path(workdir))
        targets += [] if args.no_lab else lab_targets()
        for target in targets:
            rows += bench_target(target, tools, args.runs, args.slow_runs)
    print()
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
