"""Run testssl.sh and reduce its JSON and the prober's result to comparable facts:
{"protocols": {version: bool | str}, "suites": {version: set of codes}} for one address."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TESTSSL_VERSIONS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1",
                    "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
TESTSSL_CIPHER_PREFIX = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                         "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}


def have_testssl() -> bool:
    return shutil.which("testssl") is not None or shutil.which("testssl.sh") is not None


def testssl_argv(target: str, jsonfile: str, ip: str | None = None,
                 extra: Sequence[str] = ("-p", "-E")) -> list[str]:
    binary = shutil.which("testssl") or shutil.which("testssl.sh") or "testssl"
    argv = [binary, "--quiet", "--warnings", "off", "--color", "0", "--nodns", "none", "--jsonfile", jsonfile,
            *extra]
    if ip:
        argv += ["--ip", ip]
        if ":" in ip:
            argv.append("-6")
    return [*argv, target]


def run_testssl(target: str, ip: str | None = None, prefix: Sequence[str] = (),
                timeout: float = 600.0) -> list[dict[str, Any]]:
    """Run testssl.sh (optionally under a prefix such as `ip netns exec NS`) and return its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        jsonfile = str(Path(tmp) / "out.json")
        subprocess.run([*prefix, *testssl_argv(target, jsonfile, ip)], capture_output=True,
                       timeout=timeout, check=False)
        data: list[dict[str, Any]] = json.loads(Path(jsonfile).read_text())
    return data


def from_testssl(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    protocols: dict[str, bool | str] = {}
    suites: dict[str, set[int]] = {}
    for entry in entries:
        ident, finding = str(entry.get("id")), str(entry.get("finding"))
        if ident in TESTSSL_VERSIONS:
            if finding.startswith("not offered"):
                protocols[TESTSSL_VERSIONS[ident]] = False
            elif finding.startswith("offered"):
                protocols[TESTSSL_VERSIONS[ident]] = True
            else:
                protocols[TESTSSL_VERSIONS[ident]] = f"testssl: {finding}"
        elif ident.startswith("cipher-") and "_x" in ident:
            proto, code = ident.removeprefix("cipher-").rsplit("_x", 1)
            if proto in TESTSSL_CIPHER_PREFIX:
                suites.setdefault(TESTSSL_CIPHER_PREFIX[proto], set()).add(int(code, 16))
    return {"protocols": protocols, "suites": suites}


def from_prober(entry: dict[str, Any]) -> dict[str, Any]:
    suites = {v: {int(s["code"], 16) for s in listed} for v, listed in entry["cipher_suites"].items() if listed}
    return {"protocols": dict(entry["protocols"]), "suites": suites}
