"""`regaudit audit [URL]`: gather evidence, judge it under a profile, report, gate CI."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from auditor import bounded
from auditor.catalog import probe_catalog
from auditor.credentials import Credentials, load_credentials
from auditor.errors import UsageError
from auditor.evidence import EvidenceFile
from auditor.gcpolicy import fewer_collections
from auditor.judge.rtt import ConnectTimeouts
from auditor.runner import RunOptions, Selection, needed_probes
from auditor.safetext import visible
from auditor.session import AuditSession, Outputs, check_outputs
from auditor.target import PATH_KEYS, Target, parse_registry_url

if TYPE_CHECKING:
    from auditor.signing import PrivateKey

from ._common import (
    add_profile_options,
    compliance_ids,
    fail_on,
    formats,
    load_engine,
    resolve_profile,
    split_list,
)

# Options naming files or directories; a named one that does not exist is a usage error (exit 2).
PATH_OPTIONS = {
    "registry_config": "--registry-config",
    "nginx_config": "--nginx-config",
    "apache_config": "--apache-config",
    "scan_dir": "--scan-dir",
    "fstab": "--fstab",
    "ca_bundle": "--ca-bundle",
    "manifests_dir": "--manifests-dir",
    "trusted_root": "--trusted-root",
    "storage_root": "--storage-root",
    "htpasswd": "--htpasswd",
    "tls_key": "--tls-key",
}
assert set(PATH_OPTIONS) == set(PATH_KEYS)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="audit a registry deployment", description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every `audit` option (also read by `schedule run` from a schedule's stored audit options)."""
    parser.add_argument("url", nargs="?", help="the registry's public base URL, e.g. https://registry.example.com")
    parser.add_argument("--inside", action="store_true", help="also run inside checks (on the registry host)")
    add_profile_options(parser)
    for key, flag in PATH_OPTIONS.items():
        parser.add_argument(flag, dest=key, metavar="PATH", help=f"explicit {key.replace('_', ' ')} path")
    parser.add_argument("--cosign-key", action="append", default=[], metavar="PEM", help="trusted cosign public key")
    parser.add_argument("--registry-port", type=int, help="the registry's own port when not 5000 / the config's")
    parser.add_argument("--connect-timeout", metavar="FLOOR:CEILING",
                        help="bounds in ms of the connect timeout used to call a port filtered; within them it "
                        "follows the RTT measured on the connections that answered (default 100:3000); a port "
                        "silent to two attempts for two timeouts is filtered")
    parser.add_argument("--syn-retransmit", action="store_true",
                        help="before calling a port filtered, also wait for the kernel's retransmission of the "
                        "first SYN (about 1 s): slower, but sees a listener that drops SYNs while its accept "
                        "queue is full")
    parser.add_argument("--active", action="store_true",
                        help="allow active probes that change state and clean up (e.g. start-and-cancel an upload)")
    parser.add_argument("--signature-repository", metavar="REPO",
                        help="the repository holding every image's cosign .sig/.att tags, as cosign's "
                        "COSIGN_REPOSITORY (default: that variable, else each image's own repository)")
    parser.add_argument("--content-source", choices=("auto", "api", "storage"), default="auto",
                        help="where the content facts come from: auto (default) reads the filesystem storage in "
                        "inside mode whenever it is readable and walks the registry API otherwise; api or "
                        "storage force one")
    parser.add_argument("--rescan-stale", action="store_true",
                        help="run trivy (when installed) for tags whose scan report is missing, stale or of another "
                        "digest, writing the reports into --scan-dir before judging")
    parser.add_argument("--rescan-max-age", type=float, default=48.0, metavar="HOURS",
                        help="with --rescan-stale: a report older than this is stale (default 48, scans.fresh's)")
    parser.add_argument("--trivy", metavar="PATH", help="with --rescan-stale: the trivy binary (default: on PATH)")
    parser.add_argument("--deadline", type=float, default=300.0, metavar="SECONDS", help="whole-audit deadline")
    parser.add_argument("--evidence-out", metavar="FILE", help="save the gathered evidence for `regaudit evaluate`")
    parser.add_argument("--baseline", metavar="RUN|FILE", help="fail only on findings new since this run or report")
    parser.add_argument("--username", help="registry user (the password comes from the environment or a file)")
    parser.add_argument("--password-file", metavar="FILE", help="file holding the registry password")
    parser.add_argument("--docker-config", metavar="FILE", help="Docker config.json to read credentials from")
    parser.add_argument("--no-progress", action="store_true", help="no live progress display")
    parser.add_argument("--no-history", action="store_true", help="do not record this run in the history store")
    parser.add_argument("--sign-key", metavar="PEM",
                        help="write a detached signature of the JSON report (ECDSA P-256, Ed25519 or cosign key)")


def build_target(args: argparse.Namespace) -> Target:
    url = parse_registry_url(args.url) if args.url else None
    if not url and not args.inside:
        raise UsageError("nothing to audit: give the registry's URL, --inside, or both")
    paths: dict[str, str] = {}
    for key, flag in PATH_OPTIONS.items():
        value = getattr(args, key)
        if value:
            if not Path(value).exists():
                try:
                    os.stat(value)
                except OSError as exc:
                    raise UsageError(f"{flag} {value}: {bounded.oserror_reason(exc)}") from None
                raise UsageError(f"{flag} {value}: no such file or directory")
            paths[key] = str(Path(value).absolute())
    for key in args.cosign_key:
        if not Path(key).is_file():
            raise UsageError(f"--cosign-key {key}: no such file")
    if args.deadline <= 0:
        raise UsageError("--deadline must be positive")
    options: dict[str, Any] = {"active": bool(args.active)}
    if args.registry_port is not None:
        if not 0 < args.registry_port < 65536:
            raise UsageError("--registry-port must be 1-65535")
        options["registry_port"] = args.registry_port
    patient = bool(getattr(args, "syn_retransmit", False))
    if getattr(args, "connect_timeout", None) or patient:
        try:
            text = getattr(args, "connect_timeout", None)
            bounds = ConnectTimeouts.parse(text, syn_retransmit=patient) if text else ConnectTimeouts(
                syn_retransmit=patient)
            options["connect_timeout"] = bounds.to_json()
        except ValueError as exc:
            raise UsageError(f"--connect-timeout: {exc}") from None
    return Target(url=url, inside=args.inside, paths=paths,
                  cosign_keys=tuple(str(Path(k).absolute()) for k in args.cosign_key), options=options)


def content_options(args: argparse.Namespace, url: str | None) -> dict[str, Any]:
    """The audit's content options: the signature repository and --rescan-stale."""
    options: dict[str, Any] = {}
    source = getattr(args, "content_source", "auto")
    if source != "auto":
        if source == "api" and not url:
            raise UsageError("--content-source api walks the registry API: give the registry's URL")
        options["content_source"] = source
    signatures_in = args.signature_repository or os.environ.get("COSIGN_REPOSITORY", "")
    if signatures_in:
        options["signature_repository"] = signature_repository(signatures_in, url)
    if args.rescan_stale:
        if not args.scan_dir:
            raise UsageError("--rescan-stale writes reports into --scan-dir: give it")
        if args.rescan_max_age <= 0:
            raise UsageError("--rescan-max-age must be positive")
        options["rescan_stale"] = {"max_age_hours": args.rescan_max_age, "trivy": args.trivy}
    elif args.trivy:
        raise UsageError("--trivy is only used with --rescan-stale")
    return options


REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def signature_repository(value: str, url: str | None) -> str:
    """The repository path of a COSIGN_REPOSITORY value (`[host[:port]/]path`), which must be on the
    audited registry: UsageError otherwise."""
    first, _, rest = value.strip().partition("/")
    path = value.strip()
    if rest and ("." in first or ":" in first or first == "localhost"):
        path = rest
        if url:
            parts = urlsplit(url)
            default = 443 if parts.scheme == "https" else 80
            ours = {parts.netloc, f"{parts.hostname}:{parts.port or default}"}
            if first not in ours and f"{first}:{default}" not in ours:
                raise UsageError(f"signature repository {value} is on another registry than {url}: regaudit "
                                 "reads signatures from the audited registry only")
    if not REPOSITORY_NAME.match(path):
        raise UsageError(f"signature repository {value}: not a repository name")
    return path


@dataclass
class Prepared:
    """An audit made ready from options: the session, what it audits with, where it writes."""

    session: AuditSession
    target: Target
    credentials: Credentials | None
    outputs: Outputs
    total_probes: int


def prepare(args: argparse.Namespace) -> Prepared:
    """Turn `audit` options into a session (UsageError for bad options, before any gathering)."""
    checks = load_engine()
    profile, warnings = resolve_profile(args.profile, checks)
    target = build_target(args)
    target = dataclasses.replace(target, options={**target.options, **content_options(args, target.url)})
    wanted = formats(args.format)
    compliance = compliance_ids(args)
    credentials = load_credentials(target.host, args.password_file, args.username, args.docker_config)
    if credentials and target.scheme == "http" and target.host not in ("localhost", "127.0.0.1", "::1"):
        raise UsageError("refusing to send credentials over plain http to a non-loopback host; use https")
    selection = Selection(profile, split_list(args.select), split_list(args.skip))
    baseline = None
    if args.baseline:
        from auditor.baseline import load_baseline  # the history store: only with --baseline

        baseline = load_baseline(args.baseline)
    sign_key = load_sign_key(args.sign_key) if args.sign_key else None
    outputs = Outputs(formats=tuple(wanted), out_dir=Path(args.output),
                      evidence_out=Path(args.evidence_out) if args.evidence_out else None,
                      history=not args.no_history, sign_key=sign_key, compliance=compliance)
    check_outputs(outputs)
    options = RunOptions(fail_on=fail_on(args, profile), deadline=args.deadline, baseline=baseline,
                         warnings=list(warnings))
    probes = probe_catalog()
    total = len(needed_probes(selection.apply(checks), target.vantages()))
    return Prepared(AuditSession(checks, selection, options, probes), target, credentials, outputs, total)


def run(args: argparse.Namespace) -> int:
    ready = prepare(args)
    with fewer_collections():
        if args.no_progress or not sys.stderr.isatty():  # the bar is drawn on a terminal only: no rich import
            done = ready.session.audit(ready.target, ready.credentials, ready.outputs)
        else:
            from auditor.console import make_console, probe_progress  # rich: loaded only when shown

            with probe_progress(make_console(sys.stderr), ready.total_probes) as progress:
                ready.session.options.progress = progress  # type: ignore[assignment]
                done = ready.session.audit(ready.target, ready.credentials, ready.outputs)
    say_rescan(done.evidence)
    if "console" in ready.outputs.formats:
        from auditor.console import make_console, print_report

        print_report(make_console(), done.report, verbose=args.verbose)
    for path in done.written:
        print(f"report written: {path}", file=sys.stderr)
    return done.exit_code


def say_rescan(evidence: EvidenceFile) -> None:
    """One stderr line on what --rescan-stale did, or why it could not run."""
    record = evidence.records.get("scans.reports")
    rescan = record.value.get("rescan") if record is not None and isinstance(record.value, dict) else None
    if not isinstance(rescan, dict):
        return
    if not rescan.get("ran"):
        print(f"regaudit: --rescan-stale: {rescan.get('reason')}", file=sys.stderr)
    else:
        print(f"regaudit: --rescan-stale: {rescan.get('rescanned')} tag(s) rescanned with {rescan.get('trivy')}, "
              f"{rescan.get('failed')} failed", file=sys.stderr)
        failures = [t for t in rescan.get("tags") or [] if isinstance(t, dict) and t.get("error")]
        if failures:
            first = failures[0]
            print(visible(f"regaudit: --rescan-stale: {first.get('repo')}:{first.get('tag')}: {first['error']}"),
                  file=sys.stderr)


def load_sign_key(path: str) -> PrivateKey:
    """--sign-key's private key (the signing code loads only when a report is signed)."""
    from auditor.signing import load_private_key

    return load_private_key(path)
