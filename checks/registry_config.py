"""registry.* checks that read the registry's configuration file (judged on effective values)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, skipped, warned
from auditor.durations import parse_duration
from auditor.model import Severity, Vantage
from auditor.netaddr import parse_listen

from ._listeners import DISCOVERY, SOCKETS, port_of
from ._live import HEALTH, debug_listeners, live_health
from ._registry import PROBE, config_facts, effective, raw, subject

NEEDS = (PROBE,)
REFS_CONFIG = (
    "NIST SP 800-190 4.2.1 (registry: insecure connections and configuration)",
    "CIS Docker Benchmark 1.6 section 2 (daemon and registry configuration)",
)


def _schema() -> dict[str, Any]:
    text = resources.files("auditor.checks").joinpath("registry_config.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


SCHEMA = _schema()
PURGE_KEYS = ("age", "interval", "dryrun")


def _purging_section(config: dict[str, Any]) -> dict[str, Any] | None:
    present, section = raw(config, "storage.maintenance.uploadpurging")
    return section if present and isinstance(section, dict) else None


@check(
    id="registry.config-valid",
    title="Registry configuration parses and validates",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration",
    rationale="A config the registry misreads runs with defaults you did not choose, or panics at start; "
    "an unknown key is usually a typo that silently disables a hardening setting.",
    passes_when="the config parses as YAML and validates against distribution 2.8's configuration schema; "
    "unknown keys are reported as warn",
    remediation="Fix the reported keys; compare with docs/configuration.md of distribution 2.8.",
    generator="registry-config",
    references=REFS_CONFIG,
)
def config_valid(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    where = subject(facts)
    if "config" not in facts:
        yield failed(where, f"config does not parse: {facts.get('parse_error')}",
                     observed={"parse_error": facts.get("parse_error")}, expected="valid YAML mapping")
        return
    config = facts["config"]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    unknown: list[str] = []
    invalid: list[str] = []
    for err in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            unknown += [f"{path}.{k}" if path else k for k in extra]
        else:
            invalid.append(f"{path or '(top level)'}: {err.message}")
    section = _purging_section(config)
    if section is not None and section.get("enabled") is not False:
        missing = [k for k in PURGE_KEYS if k not in section]
        if missing:
            invalid.append(
                "storage.maintenance.uploadpurging: missing " + ", ".join(missing)
                + " (the registry panics at start when the section is present but incomplete)"
            )
    if invalid:
        yield failed(where, f"{len(invalid)} invalid setting(s): " + "; ".join(invalid),
                     observed={"invalid": invalid, "unknown_keys": unknown}, expected="no schema violations")
    elif unknown:
        yield warned(where, "unknown keys (ignored by the registry; typos?): " + ", ".join(unknown),
                     observed={"unknown_keys": unknown}, expected="only keys the registry knows")
    else:
        yield passed(where, "config parses and validates against the distribution 2.8 schema")


@check(
    id="registry.log-json",
    title="Registry logs JSON at a non-debug level",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: log",
    rationale="JSON logs feed a SIEM without fragile parsing; debug logs leak request details.",
    passes_when="log.formatter is json and log.level is not debug",
    remediation="Set log.formatter: json and log.level: info in config.yml.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
)
def log_json(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    formatter = effective(config, "log.formatter")
    level = effective(config, "log.level")
    present, legacy = raw(config, "loglevel")
    if level.default and present:
        level = level.__class__("loglevel", legacy, False)
    observed = {"formatter": formatter.describe(), "level": level.describe()}
    problems = []
    if formatter.value != "json":
        problems.append(f"formatter is {formatter.value!r}")
    if str(level.value).lower() == "debug":
        problems.append("level is debug")
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed,
                     expected={"formatter": "json", "level": "info, warn or error"})
    else:
        yield passed(subject(facts), f"{formatter.describe()}, {level.describe()}", observed=observed)


@check(
    id="registry.delete-enabled",
    title="Registry allows deletes (garbage collection needs them)",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: storage.delete",
    rationale="Without delete, vulnerable or leaked images cannot be removed and disk space never frees.",
    passes_when="storage.delete.enabled is true",
    remediation="Set storage.delete.enabled: true and restart the registry.",
    generator="registry-config",
)
def delete_enabled(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    value = effective(facts["config"], "storage.delete.enabled")
    if value.value is True:
        yield passed(subject(facts), value.describe(), observed=value.describe())
    else:
        yield failed(subject(facts), f"deletes are disabled: {value.describe()}", observed=value.describe(),
                     expected="storage.delete.enabled=true")


@check(
    id="registry.upload-purging",
    title="Incomplete uploads are purged",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: storage.maintenance.uploadpurging",
    rationale="Abandoned uploads fill the disk and can hold data that was never meant to be stored.",
    passes_when="upload purging is in effect: enabled, age <= 168h, interval <= 24h, dryrun false",
    remediation="Set storage.maintenance.uploadpurging {enabled: true, age: 168h, interval: 24h, dryrun: false}.",
    generator="registry-config",
    params={"max_age_hours": 168, "max_interval_hours": 24},
)
def upload_purging(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    section = _purging_section(config)
    if section is None:
        values = {k: effective(config, f"storage.maintenance.uploadpurging.{k}") for k in ("enabled", *PURGE_KEYS)}
    else:
        values = {
            k: effective(config, f"storage.maintenance.uploadpurging.{k}") if k == "enabled" and k not in section
            else _section_value(section, k)
            for k in ("enabled", *PURGE_KEYS)
        }
    observed = {k: v.describe() for k, v in values.items()}
    max_age = float(params["max_age_hours"]) * 3600
    max_interval = float(params["max_interval_hours"]) * 3600
    problems = []
    if values["enabled"].value is not True:
        problems.append("purging is disabled")
    else:
        age = parse_duration(values["age"].value)
        interval = parse_duration(values["interval"].value)
        if values["age"].value is None or age is None:
            problems.append("age is missing or not a duration")
        elif age > max_age:
            problems.append(f"age {values['age'].value} exceeds {params['max_age_hours']}h")
        if values["interval"].value is None or interval is None:
            problems.append("interval is missing or not a duration")
        elif interval > max_interval:
            problems.append(f"interval {values['interval'].value} exceeds {params['max_interval_hours']}h")
        if values["dryrun"].value is not False:
            problems.append("dryrun is not false (nothing is deleted)" if values["dryrun"].value is not None
                            else "dryrun is missing (the registry panics at start)")
    expected = {"enabled": True, "age": f"<= {params['max_age_hours']}h",
                "interval": f"<= {params['max_interval_hours']}h", "dryrun": False}
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed, expected=expected)
    else:
        rests = [v.key for v in values.values() if v.default]
        note = f" (rests on registry defaults for: {', '.join(rests)})" if rests else ""
        yield passed(subject(facts), "upload purging in effect" + note, observed=observed, expected=expected)


def _section_value(section: dict[str, Any], key: str) -> Any:
    from ._registry import Value

    return Value(f"storage.maintenance.uploadpurging.{key}", section.get(key), False)


@check(
    id="registry.host-https",
    title="Registry's external URL is https",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: http.host",
    rationale="The registry builds Location headers from http.host; an http or missing host sends clients "
    "(and their credentials) to plaintext or to whatever Host header an attacker sent.",
    passes_when="http.host is set and is an https URL",
    remediation="Set http.host: https://<your registry name> in config.yml.",
    generator="registry-config",
)
def host_https(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, host = raw(facts["config"], "http.host")
    if not present or not host:
        yield failed(subject(facts), "http.host is not set", observed="http.host absent",
                     expected="https://<registry host>")
        return
    try:
        parts = urlsplit(str(host))
        valid = parts.scheme == "https" and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced [ in the host part
        valid = False
    if valid:
        yield passed(subject(facts), f"http.host is {host}", observed=host)
    else:
        yield failed(subject(facts), f"http.host {host!r} is not an https URL", observed=host,
                     expected="https://<registry host>")


@check(
    id="registry.headers",
    title="Registry sends X-Content-Type-Options: nosniff",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: http.headers",
    rationale="Without nosniff a browser may render an uploaded blob as HTML or script.",
    passes_when="http.headers sets X-Content-Type-Options: [nosniff]",
    remediation="Add http.headers: {X-Content-Type-Options: [nosniff]} to config.yml.",
    generator="registry-config",
)
def headers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, configured = raw(facts["config"], "http.headers")
    values: list[str] = []
    if present and isinstance(configured, dict):
        for name, value in configured.items():
            if str(name).lower() == "x-content-type-options":
                values = [str(v) for v in (value if isinstance(value, list) else [value])]
    if any(v.strip().lower() == "nosniff" for v in values):
        yield passed(subject(facts), "X-Content-Type-Options: nosniff is configured", observed=values)
    else:
        yield failed(subject(facts), "http.headers does not set X-Content-Type-Options: nosniff",
                     observed=configured if present else "http.headers absent",
                     expected={"X-Content-Type-Options": ["nosniff"]})


@check(
    id="registry.health-check",
    title="Storage driver health check is enabled",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(PROBE, HEALTH),
    guide="Registry Configuration: health",
    rationale="With the storage health check the registry answers 503 when its storage fails instead of "
    "serving errors, and monitoring sees it.",
    passes_when="health.storagedriver enabled, interval <= 10s, threshold <= 3; /debug/health on the debug "
    "server, where reachable, answers 200 (healthy)",
    remediation="Set health.storagedriver {enabled: true, interval: 10s, threshold: 3}.",
    generator="registry-config",
    params={"max_interval_seconds": 10, "max_threshold": 3},
)
def health_check(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    config = facts["config"]
    enabled = effective(config, "health.storagedriver.enabled")
    interval = effective(config, "health.storagedriver.interval")
    threshold = effective(config, "health.storagedriver.threshold")
    observed = {"enabled": enabled.describe(), "interval": interval.describe(), "threshold": threshold.describe()}
    expected = {"enabled": True, "interval": f"<= {params['max_interval_seconds']}s",
                "threshold": f"<= {params['max_threshold']}"}
    problems = []
    if enabled.value is not True:
        problems.append("storage driver health check is not enabled")
    else:
        seconds = parse_duration(interval.value)
        if seconds is None or seconds > float(params["max_interval_seconds"]):
            problems.append(f"interval {interval.value!r} is not <= {params['max_interval_seconds']}s")
        if not isinstance(threshold.value, int) or threshold.value > int(params["max_threshold"]):
            problems.append(f"threshold {threshold.value!r} is not <= {params['max_threshold']}")
    live_problem, note, observed["live"] = live_health(ev)
    if live_problem:
        problems.append(live_problem)
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed, expected=expected)
    else:
        yield passed(subject(facts), "storage driver health check configured" + note, observed=observed,
                     expected=expected)


@check(
    id="registry.debug-loopback",
    title="Registry debug server listens on loopback only",
    severity=Severity.HIGH,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(PROBE, DISCOVERY, SOCKETS),
    guide="beyond the guide (http.debug)",
    rationale="The debug server exposes pprof, expvar and health without authentication.",
    passes_when="http.debug.addr, when set, is a loopback address and the registry's debug listener really "
    "listens only on loopback (its sockets read from /proc/net/tcp and tcp6)",
    remediation="Set http.debug.addr: 127.0.0.1:5001 (or remove the debug section).",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
)
def debug_loopback(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, addr = raw(facts["config"], "http.debug.addr")
    if not present or not addr:
        yield passed(subject(facts), "no debug server configured (http.debug.addr is not set)")
        return
    listen = parse_listen(str(addr))
    if listen is None:
        yield failed(subject(facts), f"http.debug.addr {addr!r} is not a host:port address", observed=addr,
                     expected="127.0.0.1:<port>")
    elif listen.loopback:
        live_problem, note, live = debug_listeners(ev, port_of(addr))
        observed = {"http.debug.addr": addr, "live": live}
        if live_problem:
            yield failed(subject(facts), f"http.debug.addr {addr} is loopback, but {live_problem}",
                         observed=observed, expected="127.0.0.1:<port>, loopback sockets only")
        else:
            yield passed(subject(facts), f"http.debug.addr {addr} is loopback" + note, observed=observed)
    else:
        where = "all interfaces" if listen.all_interfaces else listen.host
        yield failed(subject(facts), f"debug server listens on {where} ({addr})", observed=addr,
                     expected="127.0.0.1:<port>")


@check(
    id="registry.readonly-off",
    title="Registry is not left in read-only mode",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Garbage Collection: read-only mode",
    rationale="Read-only mode belongs around a garbage-collection run; left on, every push fails with 405.",
    passes_when="storage.maintenance.readonly is not enabled (warn when it is)",
    remediation="Set storage.maintenance.readonly.enabled: false after garbage collection and restart.",
    generator="registry-config",
)
def readonly_off(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    value = effective(facts["config"], "storage.maintenance.readonly.enabled")
    if value.value is True:
        yield warned(subject(facts), "read-only mode is enabled: pushes fail with 405", observed=value.describe(),
                     expected="storage.maintenance.readonly.enabled=false outside a GC run")
    else:
        yield passed(subject(facts), value.describe(), observed=value.describe())


@check(
    id="registry.token-config",
    title="Token authentication is configured safely",
    severity=Severity.HIGH,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Token-Based Authentication",
    rationale="A token realm over plain HTTP leaks credentials; a missing or expired root bundle breaks or "
    "weakens token validation; autoredirect sends clients to a realm built from the request's Host.",
    passes_when="when auth.token is configured: realm https, service and issuer set, rootcertbundle exists, "
    "parses and is unexpired, autoredirect false",
    remediation="Fix auth.token in config.yml: https realm, service, issuer, a valid rootcertbundle, "
    "autoredirect: false.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.2",),
)
def token_config(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, token = raw(facts["config"], "auth.token")
    if not present or not isinstance(token, dict):
        yield skipped(subject(facts), "no token authentication configured (auth.token absent)")
        return
    problems = []
    realm = str(token.get("realm") or "")
    if urlsplit(realm).scheme != "https":
        problems.append(f"realm {realm!r} is not https")
    for key in ("service", "issuer"):
        if not token.get(key):
            problems.append(f"{key} is not set")
    if token.get("autoredirect") is True:
        problems.append("autoredirect is true")
    bundle = facts.get("rootcertbundle") or {}
    if not bundle.get("exists"):
        problems.append(f"rootcertbundle {token.get('rootcertbundle')!r} does not exist")
    elif bundle.get("parse_error"):
        problems.append(f"rootcertbundle: {bundle['parse_error']}")
    else:
        for cert in bundle.get("certificates", []):
            not_after = dt.datetime.fromisoformat(cert["not_after"])
            if not_after <= ev.now:
                problems.append(f"rootcertbundle certificate {cert['subject']} expired {cert['not_after']}")
            if dt.datetime.fromisoformat(cert["not_before"]) > ev.now:
                problems.append(f"rootcertbundle certificate {cert['subject']} is not valid yet")
        if not bundle.get("certificates"):
            problems.append("rootcertbundle holds no certificate")
    observed = {"token": token, "rootcertbundle": bundle}
    if problems:
        yield failed(subject(facts), "; ".join(problems), observed=observed,
                     expected="https realm, service, issuer, valid rootcertbundle, autoredirect false")
    else:
        yield passed(subject(facts), f"token auth: realm {realm}, service {token['service']}", observed=observed)
