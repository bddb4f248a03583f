"""files.* checks: TLS private keys, htpasswd files and config files: modes, owners, hash schemes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.shapes import FilesStat
from auditor.model import Severity, Vantage

PROBE = "files.stat"
KEY_MODES = ("0600", "0400")


def _observed(item: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("path", "source", "mode", "uid", "owner", "gid", "group", "symlink", "realpath")
    return {k: item.get(k) for k in keys if k in item}


def _not_a_file(item: Mapping[str, Any], what: str) -> Outcome | None:
    """files.* judge files, never directories: a named path that exists but is not a regular file
    is reported (which, named by what) and not judged."""
    if not item.get("exists") or item.get("is_file", True):
        return None
    kind = "a directory" if item.get("is_dir") else "not a regular file"
    return errored(str(item["path"]), f"{item.get('source')} names {item['path']} as {what}, but it is {kind}: "
                   "not judged (files.* judge files, never directories)", observed=_observed(item),
                   expected=f"a regular {what} file")


def _nothing(facts: Mapping[str, Any], what: str, flag: str) -> Outcome:
    broken = {k: v for k, v in (facts.get("sources_unavailable") or {}).items() if str(v).startswith("error")}
    if broken:
        return errored("-", f"no {what} found, and config evidence failed: "
                       + "; ".join(f"{k}: {v}" for k, v in sorted(broken.items())),
                       observed=facts.get("sources_unavailable"), expected=f"the {what} named by the configs")
    return skipped("-", f"no {what} is named by the registry or proxy configs (give {flag} to check one)")


@check(
    id="files.tls-key",
    title="TLS private keys are 0600/0400 and owned by root",
    severity=Severity.HIGH,
    area="files",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide="beyond the guide (SSLCertificateKeyFile)",
    rationale="Anyone who reads the private key can impersonate the registry and decrypt captured traffic "
    "(non-forward-secret suites) or run a man in the middle.",
    passes_when="every private key the proxy and registry configs name (or --tls-key) exists, has mode "
    "0600 or 0400 and is owned by root",
    remediation="chown root:root <key> && chmod 0600 <key>",
    generator="file-permissions",
    references=("CIS Apache HTTP Server 2.4 Benchmark 7.x (private key permissions)",),
)
def tls_key(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed(PROBE, FilesStat)
    keys = facts.get("tls_keys") or []
    if not keys:
        yield _nothing(facts, "TLS private key", "--tls-key")
        return
    for item in keys:
        path = str(item["path"])
        if (odd := _not_a_file(item, "TLS private key")) is not None:
            yield odd
            continue
        if not item.get("exists"):
            yield failed(path, f"the key named by {item.get('source')} does not exist ({item.get('error')})",
                         observed=_observed(item), expected="an existing key file, 0600/0400, owned by root")
            continue
        problems = []
        if item.get("mode") not in KEY_MODES:
            problems.append(f"mode {item.get('mode')}")
        if item.get("uid") != 0:
            problems.append(f"owned by {item.get('owner') or item.get('uid')}")
        if problems:
            yield failed(path, "private key is " + " and ".join(problems), observed=_observed(item),
                         expected={"mode": list(KEY_MODES), "owner": "root"})
        else:
            yield passed(path, f"mode {item['mode']}, owned by root", observed=_observed(item))


@check(
    id="files.htpasswd",
    title="htpasswd is not world-readable and holds only bcrypt hashes",
    severity=Severity.HIGH,
    area="files",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide="Basic Authentication (htpasswd -B)",
    rationale="A world-readable htpasswd hands every local user the hashes; MD5 (apr1), SHA-1 and crypt "
    "hashes fall to offline cracking in minutes, and the registry itself accepts only bcrypt.",
    passes_when="every htpasswd file (Apache AuthUserFile, nginx auth_basic_user_file, registry "
    "auth.htpasswd.path, or --htpasswd) has "
    "no read bit for others and every entry is bcrypt ($2y$, $2a$ or $2b$)",
    remediation="chmod 0640 <file> (group: the web server's); re-create non-bcrypt entries with "
    "`htpasswd -B <file> <user>`.",
    generator="file-permissions",
)
def htpasswd(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed(PROBE, FilesStat)
    found = facts.get("htpasswd") or []
    if not found:
        yield _nothing(facts, "htpasswd file", "--htpasswd")
        return
    for item in found:
        path = str(item["path"])
        if (odd := _not_a_file(item, "htpasswd")) is not None:
            yield odd
            continue
        if not item.get("exists") or item.get("read_error"):
            yield failed(path, f"the htpasswd named by {item.get('source')} is missing or unreadable "
                         f"({item.get('error') or item.get('read_error')})", observed=_observed(item),
                         expected="an existing htpasswd file")
            continue
        entries = item.get("entries") or []
        weak = [{"user": e["user"], "line": e["line"], "scheme": e["scheme"]} for e in entries
                if e["scheme"] != "bcrypt"]
        problems = []
        if int(str(item.get("mode")), 8) & 0o004:
            problems.append(f"world-readable (mode {item.get('mode')})")
        if weak:
            problems.append("non-bcrypt entries: " + ", ".join(f"{w['user']} ({w['scheme']})" for w in weak))
        observed = {**_observed(item), "entries": len(entries), "non_bcrypt": weak}
        expected = {"mode": "no read bit for others (e.g. 0640)", "hashes": "bcrypt ($2y$/$2a$/$2b$)"}
        if problems:
            yield failed(path, "; ".join(problems), observed=observed, expected=expected)
        else:
            yield passed(path, f"mode {item.get('mode')}, {len(entries)} entries, all bcrypt", observed=observed,
                         expected=expected)


@check(
    id="files.configs",
    title="Config files are owned by root and not writable by group or others",
    severity=Severity.MEDIUM,
    area="files",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide="beyond the guide (file permissions)",
    rationale="Whoever can write the registry or proxy config can disable auth, redirect traffic or load "
    "a module at the next restart.",
    passes_when="the registry config and the nginx and Apache configs, includes and all, and the TLS "
    "certificates any of them names (SSLCertificateFile, ssl_certificate, http.tls.certificate), are owned "
    "by root and have no write bit for group or others",
    remediation="chown root:root <file> && chmod go-w <file>",
    generator="file-permissions",
    references=("CIS Apache HTTP Server 2.4 Benchmark 3.x (config ownership and permissions)",),
)
def configs(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev.typed(PROBE, FilesStat)
    found = facts.get("configs") or []
    if not found:
        yield _nothing(facts, "config file", "--registry-config")
        return
    for item in found:
        path = str(item["path"])
        if (odd := _not_a_file(item, "config")) is not None:
            yield odd
            continue
        if not item.get("exists"):
            yield errored(path, f"{item.get('source')} {path} cannot be examined ({item.get('error')})",
                          observed=_observed(item))
            continue
        problems = []
        if int(str(item.get("mode")), 8) & 0o022:
            problems.append(f"writable by group or others (mode {item.get('mode')})")
        if item.get("uid") != 0:
            problems.append(f"owned by {item.get('owner') or item.get('uid')}")
        if problems:
            yield failed(path, f"{item.get('source')}: " + "; ".join(problems), observed=_observed(item),
                         expected={"owner": "root", "mode": "no group/other write bit"})
        else:
            yield passed(path, f"{item.get('source')}: mode {item.get('mode')}, owned by root",
                         observed=_observed(item))
