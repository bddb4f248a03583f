"""proxy.apache-* checks: the <VirtualHost> Apache selects for the registry's host on 443, judged on
the effective configuration `config.apache` records (an Apache that is not deployed makes every
check `skip`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.ciphers import canonical_suite, explicit_ciphers, with_flags
from auditor.judge.shapes import ConfigApache, ConfigApacheVhost
from auditor.model import Severity, Vantage

from ._shared import REFS, REFS_TLS, TLS_PARAMS, hsts_problem, shown_where

APACHE = "config.apache"
REGISTRY = "config.registry"
GUIDE_APACHE = "Apache Configuration for Registry Proxying"
# mod_ssl's SSLProtocol keywords; "all" is TLSv1-TLSv1.3 (Debian's OpenSSL 3 is built without SSLv3).
PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PROTOCOL_ALL = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def _apache_vhost(ev: Evidence) -> tuple[ConfigApache, ConfigApacheVhost | None, str]:
    facts = ev.typed(APACHE, ConfigApache)
    vhost = facts.get("vhost")
    if isinstance(vhost, dict):
        subject = f"Apache <VirtualHost {' '.join(vhost.get('addresses') or [])}> {vhost.get('server_name') or '-'} " \
                  f"at {vhost.get('where')}"
        return facts, vhost, subject
    return facts, None, f"Apache {facts.get('path')}"


def _no_vhost(facts: ConfigApache, subject: str) -> Outcome:
    return skipped(subject, f"Apache ({facts.get('path')}) serves no registry vhost: {facts.get('selection')}")


def protocols_enabled(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The protocols mod_ssl's SSLProtocol enables, and unknown keywords (parsed as mod_ssl does)."""
    enabled: set[str] = set()
    unknown = []
    lower = {p.lower(): p for p in PROTOCOLS}
    for raw in args:
        action = raw[0] if raw[:1] in "+-" else ""
        word = raw[1:] if action else raw
        if word.lower() == "all":
            this = set(PROTOCOL_ALL)
        elif word.lower() in lower:
            this = {lower[word.lower()]}
        else:
            unknown.append(raw)
            continue
        if action == "-":
            enabled -= this
        elif action == "+":
            enabled |= this
        else:
            enabled = set(this)
    return [p for p in PROTOCOLS if p in enabled], unknown


@check(
    id="proxy.apache-tls",
    title="The registry's Apache vhost enables TLS with the profile's protocols and ciphers",
    severity=Severity.HIGH,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(APACHE,),
    guide=f"{GUIDE_APACHE}: SSLEngine, SSLProtocol, SSLCipherSuite",
    rationale="The vhost's SSLProtocol and SSLCipherSuite decide what every client can be downgraded to; "
    "tls.protocols and tls.ciphers see the wire, this check names the config line to fix.",
    passes_when="SSLEngine on; SSLProtocol enables only the allowed protocols (TLSv1.2, TLSv1.3); every "
    "TLS 1.2 suite the SSLCipherSuite string expands to (openssl ciphers -s -v) is in the allowlist; with "
    "require_hsts, `Header always set Strict-Transport-Security` with max-age >= hsts_min_max_age",
    remediation="In the vhost: SSLEngine on; SSLProtocol -all +TLSv1.2 +TLSv1.3; SSLCipherSuite "
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384.",
    generator="apache-vhost",
    references=REFS_TLS,
    params=TLS_PARAMS,
)
def apache_tls(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, vhost, subject = _apache_vhost(ev)
    if vhost is None:
        yield _no_vhost(facts, subject)
        return
    allowed_protocols = [str(p) for p in params["allowed_protocols"]]
    allowed_ciphers = {canonical_suite(str(c)) for c in params["allowed_tls12_ciphers"]}
    problems: list[str] = []
    undecided: list[str] = []
    engine = vhost.get("ssl_engine") or {}
    if str(engine.get("value") or "").lower() != "on":
        problems.append(f"SSLEngine is {engine.get('value')} ({shown_where(engine)})")
    protocol = vhost.get("ssl_protocol") or {}
    enabled, unknown = protocols_enabled([str(a) for a in protocol.get("args") or []])
    extra = [p for p in enabled if p not in allowed_protocols]
    if extra:
        problems.append(f"SSLProtocol {protocol.get('value')!r} ({shown_where(protocol)}) enables {', '.join(extra)}")
    if unknown:
        undecided.append(f"SSLProtocol keywords not understood: {', '.join(unknown)}")
    if not enabled:
        problems.append(f"SSLProtocol {protocol.get('value')!r} enables no protocol")
    conf_cmds = vhost.get("ssl_openssl_conf_cmd") or []
    if any(str(c[0]).lower() in ("protocol", "minprotocol", "cipherstring") for c in conf_cmds if c):
        undecided.append(f"SSLOpenSSLConfCmd overrides protocols or ciphers: {conf_cmds}")
    cipher = vhost.get("ssl_cipher_suite") or {}
    expansion = facts.get("cipher_expansion") or {}
    suites: list[str] | None = None
    if expansion.get("suites") is not None:
        suites = [str(s["name"]) for s in expansion.get("suites") or [] if s.get("protocol") != "TLSv1.3"]
    elif cipher.get("value"):
        suites = explicit_ciphers(str(cipher["value"]))
    if suites is None:
        undecided.append(f"cannot expand SSLCipherSuite {cipher.get('value')!r}: {expansion.get('error')}")
    else:
        weak = [s for s in suites if canonical_suite(s) not in allowed_ciphers]
        if weak:
            problems.append(f"SSLCipherSuite {cipher.get('value')!r} ({shown_where(cipher)}) enables "
                            f"{len(weak)} suite(s) outside the allowlist: {', '.join(with_flags(s) for s in weak)}")
        if not suites:
            problems.append(f"SSLCipherSuite {cipher.get('value')!r} enables no TLS 1.2 suite")
    headers = [{"name": h["args"][-2], "value": h["args"][-1], "where": h.get("where")}
               for h in vhost.get("response_headers") or []
               if len(h.get("args") or []) >= 3 and str(h["args"][-3]).lower() == "set"]
    hsts = hsts_problem(headers, params, f"Header in the vhost at {vhost.get('where')}")
    if hsts:
        problems.append(hsts)
    observed = {"SSLEngine": engine, "SSLProtocol": protocol, "protocols_enabled": enabled,
                "SSLCipherSuite": cipher, "tls12_suites": suites, "SSLOpenSSLConfCmd": conf_cmds,
                "expansion_tool": expansion.get("tool")}
    expected = {"SSLEngine": "on", "protocols": allowed_protocols,
                "tls12_suites": [str(c) for c in params["allowed_tls12_ciphers"]]}
    if problems:
        yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
    elif undecided:
        yield errored(subject, "; ".join(undecided), observed=observed, expected=expected)
    else:
        yield passed(subject, f"SSLEngine on, {', '.join(enabled)}, suites {', '.join(suites or [])}",
                     observed=observed, expected=expected)


def _same_upstream(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _timeout_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    raw = str(text).strip().lower()
    if raw.endswith("ms") and raw[:-2].isdigit():
        return int(raw[:-2]) / 1000
    return float(raw) if raw.isdigit() else None


@check(
    id="proxy.apache-proxy",
    title="Apache proxies /v2/ to a loopback upstream the way the registry needs",
    severity=Severity.MEDIUM,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(APACHE,),
    guide=f"{GUIDE_APACHE}: ProxyPass, RequestHeader, ProxyTimeout, LimitRequestBody",
    rationale="Without nocanon Apache re-encodes digests and paths; without X-Forwarded-Proto https the "
    "registry redirects uploads to http; a short ProxyTimeout cuts large pushes; LimitRequestBody "
    "(1 GiB by default since httpd 2.4.54) rejects large layers; a non-loopback upstream sends registry "
    "traffic, and credentials, over the network in plaintext.",
    passes_when="the ProxyPass serving /v2/ goes to a loopback upstream (the registry or an inner proxy) with "
    "nocanon and a matching ProxyPassReverse; RequestHeader set X-Forwarded-Proto https; ProxyTimeout "
    ">= 900; LimitRequestBody 0 for /v2/",
    remediation="ProxyPass / http://127.0.0.1:5000/ nocanon; ProxyPassReverse / http://127.0.0.1:5000/; "
    "RequestHeader set X-Forwarded-Proto \"https\"; ProxyTimeout 900; LimitRequestBody 0.",
    generator="apache-vhost",
    references=REFS,
    params={"min_proxy_timeout_seconds": 900},
)
def apache_proxy(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, vhost, subject = _apache_vhost(ev)
    if vhost is None:
        yield _no_vhost(facts, subject)
        return
    access = facts.get("v2_access_by_uri") or [facts.get("v2_access") or {}]
    rule = vhost.get("v2_proxy_pass")
    problems: list[str] = []
    observed: dict[str, Any] = {"ProxyPass": rule, "ProxyPassReverse": vhost.get("proxy_pass_reverse"),
                                "RequestHeader": vhost.get("request_headers"),
                                "ProxyTimeout": vhost.get("proxy_timeout"),
                                "LimitRequestBody": {a.get("uri"): a.get("limit_request_body") for a in access}}
    if not rule or rule.get("url") == "!":
        problems.append("no ProxyPass serves /v2/" + (f" ({rule.get('where')} excludes it)" if rule else ""))
    else:
        url = str(rule.get("url"))
        flags = [str(f).lower() for f in rule.get("flags") or []]
        if not vhost.get("v2_upstream_loopback"):
            problems.append(f"ProxyPass upstream {url} is not a loopback address")
        if "nocanon" not in flags:
            problems.append(f"ProxyPass {rule.get('path')} {url} at {rule.get('where')} lacks nocanon")
        reverse = [r for r in vhost.get("proxy_pass_reverse") or []
                   if len(r.get("args") or []) >= 2 and _same_upstream(str(r["args"][1]), url)]
        if not reverse:
            problems.append(f"no ProxyPassReverse for {url}")
        timeout_flag = next((f.split("=", 1)[1] for f in flags if f.startswith("timeout=")), None)
        if timeout_flag is not None:
            observed["ProxyPass_timeout"] = timeout_flag
    headers = vhost.get("request_headers") or []
    proto = [h for h in headers if len(h.get("args") or []) >= 3 and str(h["args"][0]).lower() == "set"
             and str(h["args"][1]).lower() == "x-forwarded-proto"]
    if not proto or str(proto[-1]["args"][2]).lower() != "https":
        problems.append("no `RequestHeader set X-Forwarded-Proto https`"
                        + (f" (found {' '.join(proto[-1]['args'])})" if proto else ""))
    timeout = vhost.get("proxy_timeout") or {}
    flag_seconds = _timeout_seconds(observed.get("ProxyPass_timeout"))
    seconds = flag_seconds if flag_seconds is not None else _timeout_seconds(timeout.get("value"))
    minimum = float(params["min_proxy_timeout_seconds"])
    if seconds is None or seconds < minimum:
        problems.append(f"proxy timeout {seconds if seconds is not None else timeout.get('value')}s "
                        f"({shown_where(timeout)}) < {minimum:g}s")
    for entry in access:
        limit = entry.get("limit_request_body") or {}
        if limit.get("value") is None:
            default = vhost.get("limit_request_body_default")
            problems.append(f"LimitRequestBody unset for {entry.get('uri')}: httpd's default is {default} bytes "
                            f"(set it in the vhost at {vhost.get('where')})")
        elif str(limit["value"]).strip() != "0":
            problems.append(f"LimitRequestBody {limit['value']} for {entry.get('uri')} ({limit.get('where')})")
    problems = list(dict.fromkeys(problems))
    expected = {"ProxyPass": "loopback upstream, nocanon, with ProxyPassReverse",
                "RequestHeader": "set X-Forwarded-Proto https",
                "ProxyTimeout": f">= {minimum:g}", "LimitRequestBody": "0"}
    if problems:
        yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
    else:
        yield passed(subject, f"/v2/ proxied to {rule['url'] if rule else '?'} nocanon, X-Forwarded-Proto https, "
                     f"timeout {seconds:g}s, LimitRequestBody 0", observed=observed, expected=expected)


def _authz(entry: Mapping[str, Any]) -> tuple[bool, bool, list[Any]]:
    """(requires an authenticated user, open to everyone) from the Require rules in effect."""
    require = entry.get("require") or {}
    rules = require.get("rules") or []
    any_level = [r for r in rules if r.get("container") in (None, "RequireAny")]
    authenticated = any(str((r.get("args") or [""])[0]).lower() == "valid-user"
                        for r in rules if r.get("container") in (None, "RequireAny", "RequireAll"))
    open_to_all = any([str(a).lower() for a in r.get("args") or []] == ["all", "granted"] for r in any_level)
    return authenticated and not open_to_all, open_to_all, rules


@check(
    id="proxy.apache-auth",
    title="Apache requires authentication on /v2/ (or the registry uses token auth)",
    severity=Severity.CRITICAL,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(APACHE, REGISTRY),
    guide=f"{GUIDE_APACHE}: <Location /v2/> AuthType, AuthUserFile, Require valid-user",
    rationale="Without it anyone who reaches the proxy can pull every image and, with the registry's "
    "defaults, push and delete.",
    passes_when="/v2/ (and /v2/_catalog, uploads) is in a Location with an AuthType and `Require valid-user` "
    "not overridden by `Require all granted`, and the AuthUserFile exists; or the registry config has "
    "token authentication (auth.token)",
    remediation="<Location /v2/> AuthType Basic; AuthName \"Registry Authentication\"; AuthUserFile "
    "/etc/registry/htpasswd; Require valid-user </Location>.",
    generator="apache-vhost",
    references=("NIST SP 800-190 4.2.2 (registry: stale or insufficient authentication)",),
)
def apache_auth(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, vhost, subject = _apache_vhost(ev)
    if vhost is None:
        yield _no_vhost(facts, subject)
        return
    registry = ev.get(REGISTRY)
    config = registry.get("config") if isinstance(registry, dict) else None
    auth_section = config.get("auth") if isinstance(config, dict) and isinstance(config.get("auth"), dict) else {}
    if isinstance(auth_section, dict) and isinstance(auth_section.get("token"), dict):
        yield passed(subject, "the registry authenticates with tokens (auth.token in "
                     f"{registry.get('path') if isinstance(registry, dict) else 'its config'})",
                     observed={"registry_auth": sorted(auth_section)}, expected="Apache auth on /v2/ or auth.token")
        return
    by_problem: dict[str, list[str]] = {}
    observed: dict[str, Any] = {}
    for entry in facts.get("v2_access_by_uri") or [facts.get("v2_access") or {}]:
        uri = str(entry.get("uri"))
        auth_type = (entry.get("auth_type") or {}).get("value")
        required, open_to_all, rules = _authz(entry)
        observed[uri] = {"sections": entry.get("sections"), "AuthType": entry.get("auth_type"),
                         "AuthUserFile": entry.get("auth_user_file"), "Require": entry.get("require")}
        found = []
        if not auth_type or str(auth_type).lower() == "none":
            found.append("no AuthType")
        if open_to_all:
            granted = [r for r in rules if [str(a).lower() for a in r.get("args") or []] == ["all", "granted"]]
            found.append(f"`Require all granted` ({granted[-1].get('where') if granted else '?'}) lets everyone in")
        elif not required:
            shown = "; ".join(" ".join(r.get("args") or []) for r in rules) or "no Require"
            found.append(f"no `Require valid-user` ({shown})")
        for problem in found:
            by_problem.setdefault(problem, []).append(uri)
    problems = [f"{problem} on {', '.join(uris)}" for problem, uris in by_problem.items()]
    provider = str(((facts.get("v2_access") or {}).get("auth_basic_provider") or {}).get("value") or "file")
    user_file = facts.get("auth_user_file")
    observed["AuthUserFile_facts"] = user_file
    if "file" in provider.lower().split():
        if not user_file:
            problems.append("no AuthUserFile for /v2/")
        elif not user_file.get("exists"):
            problems.append(f"AuthUserFile {user_file.get('path')} does not exist")
    problems = list(dict.fromkeys(problems))
    expected = "AuthType and `Require valid-user` on /v2/, an existing AuthUserFile (or registry auth.token)"
    if problems:
        if registry is None and ev.state(REGISTRY) != "not_applicable":
            problems.append(f"and the registry config could not be read to look for token auth "
                            f"({ev.reason(REGISTRY)})")
            yield errored(subject, "; ".join(problems), observed=observed, expected=expected)
            return
        yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
    else:
        where = user_file.get("path") if user_file else "-"
        yield passed(subject, f"/v2/ requires a valid user ({provider} provider, {where})",
                     observed=observed, expected=expected)
