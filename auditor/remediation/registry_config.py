"""Generator `registry-config`: the guide's registry keys deep-merged into the live config.yml.

The user's storage driver, paths and unrelated keys are kept: the live file is loaded with PyYAML,
only the keys that fall short of the guide are changed, and the result is dumped. PyYAML drops
comments (ruamel is not available): the plan says so. A merge that changes nothing leaves the
live file's bytes untouched.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from auditor import bounded
from auditor.judge.netaddr import ListenAddr, parse_listen
from auditor.judge.units import parse_duration

from .model import FileChange, MoveAside, Plan, TextRemedy
from .render import header
from .site import Site, read_live

NAME = "registry-config"
# Checks this generator fixes by config (outside ones through the registry's bind address/headers).
CONFIG_CHECKS = (
    "registry.config-valid", "registry.log-json", "registry.delete-enabled", "registry.upload-purging",
    "registry.host-https", "registry.headers", "registry.health-check", "registry.debug-loopback",
    "registry.bind-loopback", "registry.readonly-off", "registry.notifications",
)
OUTSIDE_CHECKS = ("http.nosniff", "net.registry-port-exposed")
CONTAINER_PUBLISH = ("registry.bind-loopback", "net.registry-port-exposed", "auth.challenge-over-tls")


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _loopback_addr(addr: Any, default_port: int) -> str | None:
    """127.0.0.1:<port> for a non-loopback listen address; None when it is loopback already."""
    listen = parse_listen(str(addr)) if addr else None
    if listen is not None and listen.loopback:
        return None
    port = default_port
    text = str(addr or "")
    if ":" in text:
        tail = text.rsplit(":", 1)[1]
        if tail.isdigit():
            port = int(tail)
    return f"127.0.0.1:{port}"


def _longer(value: Any, limit_seconds: float) -> bool:
    seconds = parse_duration(value) if value is not None else None
    return seconds is None or seconds > limit_seconds


WATCH_ENDPOINT = "regaudit-watch"
NOTIFY_DEFAULTS: dict[str, Any] = {
    "timeout": "2s",         # the watcher answers after one fsync; a slow answer is a failure, retried
    "threshold": 3,          # failures in a row before the registry backs off
    "backoff": "1s",         # then retries every second (events queue in memory meanwhile)
    "ignoredmediatypes": ["application/octet-stream"],
    "ignore": {"actions": ["pull"]},  # pulls are not judged: do not queue them
}


def notifications(config: dict[str, Any], url: str, token: str) -> list[str]:
    """Add (or correct) the `notifications` endpoint of `regaudit watch` in `config`, in place.

    The endpoint named regaudit-watch gets the URL, `Authorization: [Bearer TOKEN]`, and the
    defaults above where unset; other endpoints are kept. Returns what changed."""
    changes: list[str] = []
    block = config.get("notifications")
    if not isinstance(block, dict):
        block = {}
        config["notifications"] = block
    events = block.get("events")
    if not isinstance(events, dict) or events.get("includereferences") is not True:
        block["events"] = {**(events if isinstance(events, dict) else {}), "includereferences": True}
        changes.append("notifications.events.includereferences: -> True")
    endpoints = block.get("endpoints")
    if not isinstance(endpoints, list):
        endpoints = []
        block["endpoints"] = endpoints
    entry = next((e for e in endpoints if isinstance(e, dict) and e.get("name") == WATCH_ENDPOINT), None)
    if entry is None:
        entry = {"name": WATCH_ENDPOINT}
        endpoints.append(entry)
        changes.append(f"notifications.endpoints: added {WATCH_ENDPOINT} -> {url}")
    if entry.get("url") != url:
        entry["url"] = url
        changes.append(f"notifications.endpoints[{WATCH_ENDPOINT}].url -> {url!r}")
    if entry.get("disabled"):
        entry["disabled"] = False
        changes.append(f"notifications.endpoints[{WATCH_ENDPOINT}].disabled -> False")
    found = entry.get("headers")
    headers: dict[str, Any] = found if isinstance(found, dict) else {}
    if headers.get("Authorization") != [f"Bearer {token}"]:
        entry["headers"] = {**headers, "Authorization": [f"Bearer {token}"]}
        changes.append(f"notifications.endpoints[{WATCH_ENDPOINT}].headers.Authorization -> [redacted]")
    for key, value in NOTIFY_DEFAULTS.items():
        if key not in entry:
            entry[key] = copy.deepcopy(value)
            changes.append(f"notifications.endpoints[{WATCH_ENDPOINT}].{key} -> {value!r}")
    return changes


def _watch_fixes_notifications(site: Site, watch: tuple[str, str] | None) -> bool:
    """Whether writing the watcher's endpoint fixes every registry.notifications failure: the URL is
    https or loopback, and each failure is the watcher's own endpoint or the missing endpoint."""
    if watch is None:
        return False
    url = urlsplit(watch[0])
    if not (url.scheme == "https" or (url.scheme == "http" and ListenAddr(url.hostname or "", None).loopback)):
        return False
    return all(" endpoint " not in r.subject or r.subject.endswith(f" endpoint {WATCH_ENDPOINT}")
               for r in site.failing("registry.notifications"))


def watch_endpoint(target: Any) -> tuple[str, str] | None:
    """(url, token) from `remediate --watch-endpoint URL --watch-token-file FILE`, or None."""
    wanted = target.get("watch_endpoint") if isinstance(target, dict) else None
    if not isinstance(wanted, dict) or not wanted.get("url"):
        return None
    token = bounded.read_text(Path(str(wanted["token_file"])), what="watch token file", max_bytes=4096).strip()
    return str(wanted["url"]), token


def harden(config: dict[str, Any], hostname: str | None, fix_readonly: bool,
           max_age_h: float = 168, max_interval_h: float = 24,
           keep_addr: bool = False, watch: tuple[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config with the guide's keys where the live ones fall short; returns (merged, changes).
    `keep_addr`: a containerised registry keeps its http.addr (its publishing decides its exposure);
    `watch` (url, token): the notifications endpoint of `regaudit watch`."""
    out = copy.deepcopy(config)
    changes: list[str] = []
    if watch is not None:
        changes += notifications(out, *watch)

    def ensure(key: str, value: Any, why: str) -> None:
        _set(out, key, value)
        changes.append(f"{key}: {why} -> {value!r}")

    if _get(out, "log.formatter") != "json":
        ensure("log.formatter", "json", f"was {_get(out, 'log.formatter')!r}")
    if _get(out, "log.level") == "debug":
        ensure("log.level", "info", "was 'debug'")
    if _get(out, "storage.delete.enabled") is not True:
        ensure("storage.delete.enabled", True, "garbage collection needs it")
    purge = "storage.maintenance.uploadpurging"
    if _get(out, f"{purge}.enabled") is not True:
        ensure(f"{purge}.enabled", True, "purging was off")
    if _longer(_get(out, f"{purge}.age"), max_age_h * 3600):
        ensure(f"{purge}.age", f"{int(max_age_h)}h", f"was {_get(out, f'{purge}.age')!r}")
    if _longer(_get(out, f"{purge}.interval"), max_interval_h * 3600):
        ensure(f"{purge}.interval", f"{int(max_interval_h)}h", f"was {_get(out, f'{purge}.interval')!r}")
    if _get(out, f"{purge}.dryrun") is not False:
        ensure(f"{purge}.dryrun", False, "nothing is deleted in dry-run")
    if fix_readonly and _get(out, "storage.maintenance.readonly.enabled") is True:
        ensure("storage.maintenance.readonly.enabled", False, "pushes fail with 405 in read-only mode")
    addr = None if keep_addr else _loopback_addr(_get(out, "http.addr") or ":5000", 5000)
    if addr:
        ensure("http.addr", addr, f"was {_get(out, 'http.addr')!r} (not loopback)")
    host = _get(out, "http.host")
    if hostname and not (isinstance(host, str) and host.startswith("https://")):
        ensure("http.host", f"https://{hostname}", f"was {host!r}")
    headers = _get(out, "http.headers")
    nosniff = headers.get("X-Content-Type-Options") if isinstance(headers, dict) else None
    if not (isinstance(nosniff, list) and "nosniff" in nosniff):
        ensure("http.headers.X-Content-Type-Options", ["nosniff"], "nosniff header missing")
    debug = _get(out, "http.debug.addr")
    if debug:
        fixed = _loopback_addr(debug, 5001)
        if fixed:
            ensure("http.debug.addr", fixed, f"was {debug!r} (not loopback)")
    if _get(out, "health.storagedriver.enabled") is not True:
        ensure("health.storagedriver.enabled", True, "storage health check off")
    if _longer(_get(out, "health.storagedriver.interval"), 10):
        ensure("health.storagedriver.interval", "10s", f"was {_get(out, 'health.storagedriver.interval')!r}")
    threshold = _get(out, "health.storagedriver.threshold")
    if not isinstance(threshold, int) or threshold > 3:
        ensure("health.storagedriver.threshold", 3, f"was {threshold!r}")
    return out, changes


def dump(config: dict[str, Any], checks: tuple[str, ...]) -> bytes:
    extra = ["Merged into the site's config: storage driver, paths and unrelated keys kept.",
             "Comments of the original file are not kept (PyYAML)."]
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return (header(NAME, checks, extra=extra) + body).encode()


def generate(site: Site, plan: Plan) -> None:
    facts = site.value("config.registry") or {}
    path = facts.get("path")
    failing = site.failing_ids()
    containerised = bool(site.discovery("registry").get("container"))
    claimed = tuple(c for c in (*CONFIG_CHECKS, *OUTSIDE_CHECKS) if c in failing)
    if _plaintext_only_on_registry_port(site):
        claimed = (*claimed, "auth.challenge-over-tls")
    if containerised:
        # inside a container http.addr must stay on the container's interfaces: where it is reachable
        # from is its publishing (generator container-run), not this file
        claimed = tuple(c for c in claimed if c not in CONTAINER_PUBLISH)
    if "registry.token-config" in failing:
        plan.texts.append(TextRemedy(
            "registry.token-config", tuple(r.subject for r in site.failing("registry.token-config")),
            "Token authentication needs your auth service's facts: set auth.token.realm to its https URL, "
            "service and issuer as it issues them, rootcertbundle to its signing certificate (readable, "
            "unexpired) and autoredirect: false; then restart the registry.", NAME))
    stale_uploads(site, plan)
    if not path:
        plan.notes.append(f"{NAME}: the registry config was not found (config.registry unavailable)")
        return
    live = read_live(path)
    if live is None:
        plan.notes.append(f"{NAME}: {path} is not readable here: nothing generated")
        return
    try:
        config = bounded.load_yaml(live, f"registry config {path}") or {}
    except (yaml.YAMLError, bounded.InputError) as exc:
        plan.texts.append(TextRemedy("registry.config-valid", (path,),
                                     f"{path} does not parse as YAML ({exc}); fix it by hand first.", NAME))
        return
    if not isinstance(config, dict):
        plan.notes.append(f"{NAME}: {path} is not a YAML mapping: nothing generated")
        return
    params = site.params("registry.upload-purging")
    try:
        watch = watch_endpoint(site.target)
    except (OSError, bounded.InputError) as exc:
        plan.notes.append(f"{NAME}: the watch token could not be read ({exc}): no notifications block")
        watch = None
    if "registry.notifications" in failing and not _watch_fixes_notifications(site, watch):
        claimed = tuple(c for c in claimed if c != "registry.notifications")
        results = site.failing("registry.notifications")
        found = "; ".join(f"{r.subject}: {r.message}" for r in results)
        plan.texts.append(TextRemedy(
            "registry.notifications", tuple(r.subject for r in results),
            f"Found: {found}. Give each endpoint an https URL (or a receiver on 127.0.0.1, where http stays on "
            "the host) and `headers: {Authorization: [Bearer TOKEN]}` with the token its receiver checks. For "
            "`regaudit watch serve`, rerun remediate with --watch-endpoint URL --watch-token-file FILE to "
            "generate its endpoint (docs/watch.md). Then restart the registry (it does not reload its config).",
            NAME))
    merged, changes = harden(config, site.hostname, "registry.readonly-off" in failing,
                             float(params.get("max_age_hours", 168)), float(params.get("max_interval_hours", 24)),
                             keep_addr=containerised, watch=watch)
    if not containerised:
        _note_proxy_upstreams(site, plan)
    if "registry.host-https" in failing and not site.hostname:
        plan.texts.append(TextRemedy("registry.host-https", (path,),
                                     "Set http.host to the registry's public https URL.", NAME))
    if not changes:
        return
    plan.files.append(FileChange(path=path, generator=NAME, checks=claimed, content=dump(merged, claimed),
                                 validate="registry", service="registry",
                                 note="; ".join(changes) + " (comments of the original are lost: PyYAML)"))
    plan.expected |= {c for c in claimed if c != "registry.stale-uploads"}


UUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
REPO = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")


def stale_uploads(site: Site, plan: Plan) -> None:
    """Move the stale uploads the check lists aside (kept in the backup), as the purger would delete them."""
    results = site.failing("registry.stale-uploads")
    layout = (site.value("storage.layout") or {}).get("layout")
    if not results or not layout:
        return
    moves = []
    for result in results:
        repo = result.subject
        for upload in result.observed if isinstance(result.observed, list) else []:
            uuid = str((upload or {}).get("upload") or "")
            if not (REPO.match(repo) and UUID.match(uuid)):
                return
            path = Path(layout) / "repositories" / repo / "_uploads" / uuid
            if not path.is_dir():
                return
            moves.append(MoveAside(str(path), NAME, ("registry.stale-uploads",)))
    if moves:
        plan.moves += moves
        plan.expected.add("registry.stale-uploads")


def _plaintext_only_on_registry_port(site: Site) -> bool:
    """auth.challenge-over-tls fails only because the registry's own port serves /v2/ in plaintext."""
    results = site.failing("auth.challenge-over-tls")
    port = (site.value("net.registry-port") or {}).get("port") or 5000
    return bool(results) and all(f":{port}/" in r.subject for r in results)


def _note_proxy_upstreams(site: Site, plan: Plan) -> None:
    """Warn when a proxy reaches the registry on a routable address (a loopback bind would cut it off)."""
    for server in (site.value("config.nginx") or {}).get("registry_servers") or []:
        for target in (server.get("proxy_pass") or {}).get("targets") or []:
            host = str(target).rsplit(":", 1)[0].strip("[]")
            try:
                if not ipaddress.ip_address(host).is_loopback:
                    plan.notes.append(f"{NAME}: nginx proxies to {target}: point it at 127.0.0.1 with the "
                                      "registry bound to loopback")
            except ValueError:
                continue
