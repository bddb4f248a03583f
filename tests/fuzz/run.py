"""Run a fuzz target under atheris (libFuzzer, coverage-guided): `python tests/fuzz/run.py TARGET [libFuzzer flags]`.

TARGET `all` fuzzes every target in one process (the first byte of an input picks the target):
what CI runs briefly, seeded with every target's seeds and regression inputs.

The target's seeds are written into a fresh corpus directory (or CORPUS_DIR when set, kept between
runs), regaudit's own modules are instrumented for coverage, and libFuzzer bounds every input:
`-timeout` (seconds per input: a hang is a crash) and `-rss_limit_mb` (memory) default to 10 s and
2048 MB. A crashing input is written to ARTIFACT_DIR (default the current directory) as
`crash-<sha1>`; commit it under tests/fuzz/regressions/<target>/ once fixed.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


ALL = "all"
# Imported under instrumentation before the targets run (the parsers and what they call).
INSTRUMENTED = (
    "auditor.bounded",
    "auditor.checks",
    "auditor.content.scandir",
    "auditor.content.walker",
    "auditor.credentials",
    "auditor.evidence",
    "auditor.host.apache",
    "auditor.host.nginx",
    "auditor.judge.certs",
    "auditor.judge.cosign",
    "auditor.judge.firewall.assemble",
    "auditor.judge.firewall.evaluate",
    "auditor.judge.firewall.iptables",
    "auditor.judge.firewall.nftables",
    "auditor.judge.firewall.reach",
    "auditor.judge.manifests",
    "auditor.judge.parse",
    "auditor.judge.scans",
    "auditor.plugins",
    "auditor.probes.registry_config",
    "auditor.profile",
    "auditor.regauth",
    "auditor.runner",
    "auditor.signing",
    "auditor.tlsprobe.handshake",
    "auditor.tlsprobe.records",
    "auditor.watch.events",
    "crossplane",
)


def _order() -> list[tuple[int, str]]:
    from fuzz.targets import TARGETS

    return list(enumerate(sorted(TARGETS)))


def dispatch(data: bytes) -> None:
    """Every target in one process (one startup, as CI's short run wants): the first byte picks
    the target, the rest is its input."""
    from fuzz.targets import TARGETS

    if not data:
        return
    order = _order()
    TARGETS[order[data[0] % len(order)][1]](data[1:])


def main(argv: list[str]) -> None:
    import atheris

    if not argv or argv[0].startswith("-"):
        raise SystemExit("usage: run.py TARGET [libFuzzer flags]")
    name, flags = argv[0], argv[1:]
    with atheris.instrument_imports(include=["auditor", "crossplane"]):
        for module in INSTRUMENTED:
            importlib.import_module(module)
    from auditor.plugins import load_checks

    with atheris.instrument_imports(include=["auditor"]):
        load_checks()  # the check modules import lazily: instrument them too
    from fuzz.targets import TARGETS, all_inputs

    if name != ALL and name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}: {ALL} or one of {', '.join(TARGETS)}")
    corpus = Path(os.environ.get("CORPUS_DIR") or tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    if name == ALL:
        target = dispatch
        for index, (tag, tname) in enumerate(_order()):
            for number, seed in enumerate(all_inputs(tname)):
                (corpus / f"seed-{index:02d}-{number:03d}").write_bytes(bytes([tag]) + seed)
    else:
        target = TARGETS[name]
        for index, seed in enumerate(all_inputs(name)):
            (corpus / f"seed-{index:03d}").write_bytes(seed)
    defaults = {"-timeout": "10", "-rss_limit_mb": "2048", "-max_len": "65536"}
    given = {f.split("=", 1)[0] for f in flags}
    extra = [f"{k}={v}" for k, v in defaults.items() if k not in given]
    artifacts = os.environ.get("ARTIFACT_DIR")
    if artifacts:
        extra.append(f"-artifact_prefix={artifacts.rstrip('/')}/")
    atheris.Setup([sys.argv[0], *extra, *flags, str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
