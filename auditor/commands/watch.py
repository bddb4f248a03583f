"""`regaudit watch serve|status|install`: continuous mode, from the registry's own notifications.

serve    listen for the registry's notification envelopes, judge every push with the audit's content
         checks and profile, keep the verdicts (SQLite, WAL), expose /metrics, send alerts
status   what is failing now and since when (reads the watcher's database; works while it runs)
install  write a systemd unit running `regaudit watch serve` (verified with systemd-analyze)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from auditor import bounded
from auditor.errors import UsageError
from auditor.target import Target, parse_registry_url

from ._common import load_engine, resolve_profile

DEFAULT_LISTEN = "127.0.0.1:9471"
PATHS = {"storage_root": "--storage-root", "scan_dir": "--scan-dir", "ca_bundle": "--ca-bundle",
         "trusted_root": "--trusted-root"}
MAX_TOKEN = 4096


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("watch", help="continuous mode: judge every push from the registry's notifications",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="run the notification endpoint and the judging loops")
    serve.add_argument("url", nargs="?", help="the registry's public base URL (tags are read through its API)")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                       help=f"where to listen (default {DEFAULT_LISTEN}: loopback only)")
    serve.add_argument("--token-file", metavar="FILE",
                       help="file holding the token the registry sends as `Authorization: Bearer TOKEN` "
                       "(else $REGAUDIT_WATCH_TOKEN)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve https with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="... and this key")
    serve.add_argument("--db", type=Path, help="the watcher's database (default <state dir>/watch.sqlite)")
    serve.add_argument("--profile", default="seed-hardened", metavar="NAME|FILE",
                       help="profile: content checks, their parameters, the grace period "
                       "(params.signatures.present.grace_minutes, default 10)")
    for key, flag in PATHS.items():
        serve.add_argument(flag, dest=key, metavar="PATH", help=f"explicit {key.replace('_', ' ')} path")
    serve.add_argument("--cosign-key", action="append", default=[], metavar="PEM", help="trusted cosign public key")
    serve.add_argument("--signature-repository", metavar="REPO", help="cosign's COSIGN_REPOSITORY, as for audit")
    serve.add_argument("--username", help="registry user (the password comes from the environment or a file)")
    serve.add_argument("--password-file", metavar="FILE", help="file holding the registry password")
    serve.add_argument("--docker-config", metavar="FILE", help="Docker config.json to read credentials from")
    serve.add_argument("--alert", action="append", default=[], metavar="KIND=URL",
                       help="alert target: alertmanager=URL, webhook=URL or slack=URL (repeatable)")
    serve.add_argument("--reconcile-interval", type=float, default=3600.0, metavar="SECONDS",
                       help="full content walk every SECONDS (and at start); default 3600")
    serve.add_argument("--no-reconcile-at-start", action="store_true", help="skip the walk at start")
    serve.add_argument("--recheck-interval", type=float, default=5.0, metavar="SECONDS",
                       help="re-judge pending tags (scan written? grace over?) every SECONDS; default 5")
    serve.add_argument("--max-body", type=int, default=1024 * 1024, metavar="BYTES",
                       help="largest request body accepted (default 1 MiB; larger gets 413)")
    serve.add_argument("--max-inflight", type=int, default=64, help="requests in progress before 503 (default 64)")
    serve.add_argument("--no-history", action="store_true", help="do not record verdict changes in the audit history")
    serve.set_defaults(func=do_serve)
    status = actions.add_parser("status", help="what is failing now, and since when")
    status.add_argument("--db", type=Path, help="the watcher's database (default <state dir>/watch.sqlite)")
    status.add_argument("--all", action="store_true", help="every live tag, not only failing and pending ones")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.set_defaults(func=do_status)
    install = actions.add_parser("install", help="write a systemd unit running `regaudit watch serve`")
    install.add_argument("name", help="unit name suffix: regaudit-watch-NAME.service")
    install.add_argument("--unit-dir", default="/etc/systemd/system", type=Path)
    install.add_argument("--serve-args", default="", metavar="'OPTIONS'",
                         help="the `regaudit watch serve` arguments, one quoted string (URL, --token-file ...)")
    install.add_argument("--user", default="regaudit", help="the unit's User= (default regaudit)")
    install.set_defaults(func=do_install)


def _default_db() -> Path:
    from auditor.history import state_dir

    return state_dir() / "watch.sqlite"


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT")
    return host, int(port)


def read_token(path: str | None) -> str:
    """The shared token: from --token-file, else $REGAUDIT_WATCH_TOKEN; never from argv."""
    if path:
        try:
            token = bounded.read_text(Path(path), what="token file", max_bytes=MAX_TOKEN).strip()
        except (OSError, ValueError) as exc:
            raise UsageError(f"--token-file {path}: {exc}") from None
    else:
        token = os.environ.get("REGAUDIT_WATCH_TOKEN", "").strip()
    if len(token) < 16:
        raise UsageError("the watcher needs a token of at least 16 characters (--token-file or REGAUDIT_WATCH_TOKEN): "
                         "the registry sends it as `Authorization: Bearer TOKEN`")
    if any(c.isspace() for c in token):
        raise UsageError("the watch token must not contain whitespace")
    return token


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """(WatchConfig, ContentJudge) from the command line; UsageError on bad input."""
    from auditor.credentials import load_credentials
    from auditor.history import target_key
    from auditor.plugins import load_probes
    from auditor.watch.alerts import parse_target
    from auditor.watch.judge import ContentJudge, grace_seconds
    from auditor.watch.service import WatchConfig

    from .audit import signature_repository

    url = parse_registry_url(args.url) if args.url else None
    paths: dict[str, str] = {}
    for key, flag in PATHS.items():
        value = getattr(args, key)
        if value:
            if not Path(value).exists():
                raise UsageError(f"{flag} {value}: no such file or directory")
            paths[key] = str(Path(value).absolute())
    if not url and "storage_root" not in paths:
        raise UsageError("nothing to watch: give the registry's URL (API) or --storage-root (filesystem storage)")
    for key in args.cosign_key:
        if not Path(key).is_file():
            raise UsageError(f"--cosign-key {key}: no such file")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for flag, value in (("--reconcile-interval", args.reconcile_interval),
                        ("--recheck-interval", args.recheck_interval),
                        ("--max-body", args.max_body), ("--max-inflight", args.max_inflight)):
        if value <= 0:
            raise UsageError(f"{flag} must be positive")
    options: dict[str, Any] = {}
    signatures_in = args.signature_repository or os.environ.get("COSIGN_REPOSITORY", "")
    if signatures_in:
        options["signature_repository"] = signature_repository(signatures_in, url)
    target = Target(url=url, inside=not url, paths=paths,
                    cosign_keys=tuple(str(Path(k).absolute()) for k in args.cosign_key), options=options)
    credentials = load_credentials(target.host, args.password_file, args.username, args.docker_config) if url else None
    if credentials and target.scheme == "http" and target.host not in ("localhost", "127.0.0.1", "::1"):
        raise UsageError("refusing to send credentials over plain http to a non-loopback host; use https")
    checks = load_engine()
    profile, warnings = resolve_profile(args.profile, checks)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    host, port = _listen(args.listen)
    history_target = target_key(target.describe()) if url else f"storage://{paths['storage_root']}"
    config = WatchConfig(
        db_path=args.db or _default_db(), token=read_token(args.token_file), registry=url or paths["storage_root"],
        listen_host=host, listen_port=port, tls_cert=args.tls_cert, tls_key=args.tls_key, max_body=args.max_body,
        max_inflight=args.max_inflight, grace=grace_seconds(checks, profile), recheck_interval=args.recheck_interval,
        reconcile_interval=args.reconcile_interval, reconcile_at_start=not args.no_reconcile_at_start,
        alert_targets=[parse_target(a) for a in args.alert],
        history_target="" if args.no_history else history_target, profile_name=profile.name,
        scan_dir=paths.get("scan_dir"))
    judge = ContentJudge(checks, load_probes(), target, credentials, profile)
    if not judge.chosen:
        raise UsageError(f"profile {profile.name} selects no content check: nothing to judge per push")
    return config, judge


def do_serve(args: argparse.Namespace) -> int:
    from auditor.watch.service import Watcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    config, judge = build(args)

    async def main() -> None:
        watcher = Watcher(config, judge)
        await watcher.serve()

    try:
        asyncio.run(main())
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.listen}: {exc}") from None
    return 0


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat()


def do_status(args: argparse.Namespace) -> int:
    """Exit 0 when nothing is failing, 1 when a tag fails or cannot be judged."""
    import sqlite3

    from auditor.watch.store import Store

    path = args.db or _default_db()
    if not path.is_file():
        raise UsageError(f"no watcher database at {path} (is `regaudit watch serve` running with --db {path}?)")
    try:
        store = Store(path)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the watcher database {path}: {exc}") from None
    try:
        rows = store.tags()
        counts = store.counts()
        reconciliation = store.meta("reconciliation", {})
    finally:
        store.close()
    shown = rows if args.all else [r for r in rows if r.state != "pass"]
    failing = [r for r in rows if r.state in ("fail", "error")]
    if args.format == "json":
        print(json.dumps({"tags": [dict(r.to_json(), since_iso=_when(r.since)) for r in shown],
                          "counts": counts, "reconciliation": reconciliation}, indent=2, sort_keys=True))
    else:
        states = counts["tags_by_state"]
        print(f"{counts['events']} events received; tags: " +
              ", ".join(f"{states.get(s, 0)} {s}" for s in ("pass", "pending", "fail", "error", "retired")))
        if reconciliation.get("at"):
            print(f"last reconciliation {_when(reconciliation['at'])}"
                  + (f" (error: {reconciliation['error']})" if reconciliation.get("error") else ""))
        for row in shown:
            print(f"{row.state:8} {row.subject:40} since {_when(row.since)}  {row.message[:160]}")
    return 1 if failing else 0


def do_install(args: argparse.Namespace) -> int:
    from auditor.schedule import install_watch_unit

    path = install_watch_unit(args.name, args.serve_args, args.unit_dir, args.user)
    print(f"wrote {path}")
    print(f"start it with: systemctl daemon-reload && systemctl enable --now {path.name}")
    return 0
