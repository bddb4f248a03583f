"""regaudit-gather: the inside evidence of one registry host, gathered read-only into one file.

The entry point of the gather-only zipapp that Ansible copies to each target host (python3 >= 3.9,
no regaudit installed), also runnable from an installed regaudit as
`python -m auditor.fleet.gather_main`. It runs the probes `regaudit audit --inside` runs for the
inside and content checks (content read from the storage, never through the API), contacts
nothing beyond this host (the registry's debug listener on this host, the Docker socket), changes
nothing but its evidence file (and signature), and has no active, remediation or rescan mode:
judging, signature verification and reports stay on the control host (`regaudit fleet`).

Exit codes: 0 evidence written, 2 usage error, 3 evidence written but no probe could gather.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.fleet import compat

compat.install()

from auditor.checkapi import ProbeRecord  # noqa: E402  (after the compat shims)
from auditor.errors import UsageError  # noqa: E402
from auditor.evidence import EvidenceFile, utcnow  # noqa: E402
from auditor.gather import Gatherer, run_main  # noqa: E402
from auditor.probeapi import Probe  # noqa: E402
from auditor.target import Target  # noqa: E402

PROG = "regaudit-gather"
MANIFEST = "_manifest.json"
# Paths on the target host that inside probes read (the audit command's flags of the same names).
PATH_OPTIONS = {
    "registry_config": "--registry-config",
    "nginx_config": "--nginx-config",
    "apache_config": "--apache-config",
    "fstab": "--fstab",
    "manifests_dir": "--manifests-dir",
    "storage_root": "--storage-root",
    "htpasswd": "--htpasswd",
    "tls_key": "--tls-key",
    "scan_dir": "--scan-dir",
    "trusted_root": "--trusted-root",
}
REFUSED = ("--active", "--remediate", "--rescan-stale", "--apply", "--fix")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else PROG)
    parser.add_argument("--version", action="version", version=f"{PROG} (regaudit {__version__})")
    parser.add_argument("--out", metavar="FILE", help="where to write the evidence (JSON, mode 0600)")
    for key, flag in PATH_OPTIONS.items():
        parser.add_argument(flag, dest=key, metavar="PATH", help=f"explicit {key.replace('_', ' ')} path")
    parser.add_argument("--cosign-key", action="append", default=[], metavar="PEM",
                        help="trusted cosign public key (a file on this host)")
    parser.add_argument("--registry-port", type=int, help="the registry's own port when not 5000 / the config's")
    parser.add_argument("--deadline", type=float, default=120.0, metavar="SECONDS", help="whole-gathering deadline")
    parser.add_argument("--sign-key", metavar="PEM",
                        help="sign the evidence (Ed25519 PKCS#8 PEM; ECDSA P-256 when cryptography is installed): "
                        "FILE.sig beside it")
    parser.add_argument("--list-probes", action="store_true", help="print the probes this artifact runs and exit")
    return parser


def inside_probes() -> dict[str, str]:
    """{probe name: module} of the inside gathering: the zipapp's manifest, else the installed checks."""
    try:
        data = pkgutil.get_data("auditor.fleet", MANIFEST)
    except OSError:
        data = None
    if data is not None:
        return dict(json.loads(data.decode("utf-8"))["probes"])
    from auditor.fleet.build_zipapp import probe_modules

    return probe_modules()


def load(names: dict[str, str]) -> dict[str, Probe]:
    """The Probe objects named, importing only their modules."""
    found: dict[str, Probe] = {}
    for module_name in sorted(set(names.values())):
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, Probe) and value.name in names:
                found[value.name] = value
    missing = sorted(set(names) - set(found))
    if missing:
        raise UsageError(f"probes missing from this build: {', '.join(missing)}")
    return found


def build_target(args: argparse.Namespace) -> Target:
    paths: dict[str, str] = {}
    for key, flag in PATH_OPTIONS.items():
        value = getattr(args, key)
        if value:
            if not Path(value).exists():
                raise UsageError(f"{flag} {value}: no such file or directory")
            paths[key] = str(Path(value).absolute())
    if args.deadline <= 0:
        raise UsageError("--deadline must be positive")
    options: dict[str, Any] = {"active": False}
    if args.registry_port is not None:
        if not 0 < args.registry_port < 65536:
            raise UsageError("--registry-port must be 1-65535")
        options["registry_port"] = args.registry_port
    for key in args.cosign_key:
        if not Path(key).is_file():
            raise UsageError(f"--cosign-key {key}: no such file")
    return Target(url=None, inside=True, paths=paths, options=options,
                  cosign_keys=tuple(str(Path(k).absolute()) for k in args.cosign_key))


async def gather(target: Target, probes: dict[str, Probe], deadline: float) -> EvidenceFile:
    started = utcnow()
    records = await Gatherer(dict(probes), target, None, deadline).gather(probes)
    return EvidenceFile.gathered(target.describe(), started, records)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, owner-only (the evidence describes the host in detail)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def evidence_bytes(evidence: EvidenceFile, host: str) -> bytes:
    data = evidence.to_json()
    data["gathered_by"] = {"artifact": PROG, "host": host, "python": sys.version.split()[0]}
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")


def run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    refused = [a for a in argv if a.split("=")[0] in REFUSED]
    if refused:
        raise UsageError(f"{refused[0]}: {PROG} is read-only; it has no active, remediation or rescan mode "
                         "(run those with the regaudit CLI)")
    args = build_parser().parse_args(argv)
    names = inside_probes()
    if args.list_probes:
        for name, module in sorted(names.items()):
            print(f"{name}\t{module}")
        return 0
    if not args.out:
        raise UsageError("--out FILE is required: where to write the evidence")
    signer = None
    if args.sign_key:
        from auditor.fleet import evidence_sign

        signer = evidence_sign.load_signer(args.sign_key)
    target = build_target(args)
    evidence = run_main(gather(target, load(names), args.deadline))
    out = Path(args.out)
    data = evidence_bytes(evidence, socket.gethostname())
    try:
        write_private(out, data)
        if signer is not None:
            write_private(out.with_name(out.name + ".sig"), signer(data))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    states = [r.state for r in evidence.records.values()]
    print(f"{PROG}: {out}: {len(states)} probes, {states.count('ok')} ok, {states.count('error')} error, "
          f"{states.count('not_applicable')} not applicable", file=sys.stderr)
    return 3 if states and all(s == "error" for s in states) else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


__all__ = ["ProbeRecord", "main"]

if __name__ == "__main__":
    sys.exit(main())
