"""proxy.* checks: the Apache vhost and the nginx server that serve the registry, judged on the
effective configuration recorded by `config.apache` and `config.nginx`.

A proxy that is not deployed makes its probe NotApplicable, so its checks `skip` with the reason.
nginx checks judge every server block whose /v2/ location proxies to the registry (one outcome
each); Apache checks judge the <VirtualHost> Apache selects for the registry's host on 443.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.host.nginx import size_bytes, time_seconds
from auditor.model import Severity, Vantage
from auditor.tlsprobe.suites import lookup

from ._proxy_shared import TLS_PARAMS, hsts_problem

NGINX = "config.nginx"
APACHE = "config.apache"
REGISTRY = "config.registry"
LAYOUT = "storage.layout"
GUIDE_APACHE = "Apache Configuration for Registry Proxying"
GUIDE_NGINX = "Nginx Alternative with Buffer Tuning"
REFS = ("NIST SP 800-190 4.2.1 (registry: insecure configuration)",)
REFS_TLS = ("NIST SP 800-52 Rev. 2 3.1, 3.3.1", "CIS Docker Benchmark 2.6 (TLS for the registry)")
GUIDE_CIPHERS = ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]
# mod_ssl's SSLProtocol keywords; "all" is TLSv1-TLSv1.3 (Debian's OpenSSL 3 is built without SSLv3).
PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PROTOCOL_ALL = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
CIPHER_KEYWORD_CHARS = "!+-@"


# ---- nginx ---------------------------------------------------------------------------------------


def _nginx_servers(ev: Evidence) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    facts = ev[NGINX]
    return facts, [s for s in facts.get("registry_servers") or [] if isinstance(s, dict)]


def _no_registry_server(facts: Mapping[str, Any]) -> Outcome:
    reg = facts.get("registry_address") or {}
    host = reg.get("host") or "*"
    seen = [f"{o.get('where')} -> {(o.get('v2_proxy_pass') or {}).get('url')}" for o in facts.get("other_servers") or []
            if (o.get("v2_proxy_pass") or {}).get("url")]
    reason = f"no server of this nginx proxies /v2/ to the registry at {host}:{reg.get('port')}"
    if not facts.get("http_block", True):
        reason += " (no http block)"
    reason += "; /v2/ is proxied elsewhere: " + ", ".join(seen) if seen else "; no server proxies /v2/ at all"
    unresolved = [o for o in facts.get("other_servers") or []
                  if str((o.get("v2_proxy_pass") or {}).get("resolved_by", "")).startswith("contains variables")]
    if unresolved:
        return errored(str(facts.get("path")), "cannot tell whether nginx proxies the registry: " + reason
                       + " (proxy_pass with variables is resolved only at request time)")
    return skipped(str(facts.get("path")), reason)


def _server_subject(facts: Mapping[str, Any], server: Mapping[str, Any]) -> str:
    names = " ".join(server.get("server_names") or []) or "-"
    location = (server.get("location") or {}).get("match") or "?"
    return f"nginx server {names} at {server.get('where')}, location {location}"


def _directive(server: Mapping[str, Any], name: str) -> dict[str, Any]:
    return dict((server.get("directives") or {}).get(name) or {"args": None, "level": "default"})


def _shown(entry: Mapping[str, Any]) -> str:
    args = entry.get("args")
    text = " ".join(args) if args else "(unset)"
    level = entry.get("level")
    where = entry.get("where")
    return f"{text} ({level}{', ' + where if where else ''})"


@check(
    id="proxy.nginx-body",
    title="nginx does not limit the size of pushed layers",
    severity=Severity.HIGH,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX,),
    guide=f"{GUIDE_NGINX}: client_max_body_size",
    rationale="nginx refuses request bodies over client_max_body_size (default 1m) with 413: every push of a "
    "layer above the limit fails.",
    passes_when="client_max_body_size is 0 (unlimited) where nginx proxies /v2/ (the effective value, "
    "inherited from http or server)",
    remediation="Set `client_max_body_size 0;` in the server (or location /v2/) that proxies the registry.",
    generator="nginx-server",
    references=REFS,
)
def nginx_body(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    for server in servers:
        entry = _directive(server, "client_max_body_size")
        value = size_bytes(str((entry.get("args") or [""])[0]))
        observed = {"client_max_body_size": entry}
        if value == 0:
            yield passed(_server_subject(facts, server), f"client_max_body_size {_shown(entry)}", observed=observed,
                         expected="0")
        elif value is None:
            yield errored(_server_subject(facts, server), f"client_max_body_size is not a size: {_shown(entry)}",
                          observed=observed, expected="0")
        else:
            yield failed(_server_subject(facts, server),
                         f"client_max_body_size {_shown(entry)}: pushes of layers over {value} bytes get 413",
                         observed=observed, expected="0")


def _size_of(entry: Mapping[str, Any], index: int = 0) -> int | None:
    args = entry.get("args") or []
    return size_bytes(str(args[index])) if len(args) > index else None


@check(
    id="proxy.nginx-buffers",
    title="nginx buffers registry traffic to its temp path, with the guide's sizes",
    severity=Severity.MEDIUM,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX, LAYOUT),
    guide=f"{GUIDE_NGINX}: proxy_buffering, proxy_buffers, proxy_temp_path",
    rationale="Undersized buffers and a temp-file cap below the largest layer make concurrent pulls of large "
    "images fail or stall with 502s; an unset proxy_temp_path leaves temp files on the default disk "
    "instead of the sized tmpfs.",
    passes_when="proxy_buffering on, proxy_buffer_size >= 32k, proxy_buffers total >= 16 x 64k, "
    "proxy_busy_buffers_size >= 128k, proxy_temp_path set, proxy_max_temp_file_size >= the largest layer "
    "in the registry (the guide's 4096m when the largest layer cannot be measured)",
    remediation="Use the guide's block: proxy_buffering on; proxy_buffer_size 32k; proxy_buffers 16 64k; "
    "proxy_busy_buffers_size 128k; proxy_temp_path <tmpfs>/proxy_temp; proxy_max_temp_file_size 4096m.",
    generator="nginx-server",
    references=REFS,
    params={"min_proxy_buffer_size": "32k", "min_proxy_buffers": "16 64k", "min_proxy_busy_buffers_size": "128k",
            "unmeasured_max_temp_file_size": "4096m"},
)
def nginx_buffers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    layout = ev.get(LAYOUT) or {}
    largest = int(((layout.get("largest_layer") or {}).get("bytes")) or 0) if isinstance(layout, dict) else 0
    min_buffer = size_bytes(str(params["min_proxy_buffer_size"])) or 0
    count_text, _, size_text = str(params["min_proxy_buffers"]).partition(" ")
    min_total = int(count_text) * (size_bytes(size_text.strip()) or 0)
    min_busy = size_bytes(str(params["min_proxy_busy_buffers_size"])) or 0
    min_temp = largest or size_bytes(str(params["unmeasured_max_temp_file_size"])) or 0
    expected = {"proxy_buffering": "on", "proxy_buffer_size": f">= {params['min_proxy_buffer_size']}",
                "proxy_buffers": f"total >= {params['min_proxy_buffers']}",
                "proxy_busy_buffers_size": f">= {params['min_proxy_busy_buffers_size']}",
                "proxy_temp_path": "set explicitly",
                "proxy_max_temp_file_size": f">= {min_temp} bytes"
                + (" (the largest layer)" if largest else
                   f" (largest layer not measured: the guide's {params['unmeasured_max_temp_file_size']})")}
    for server in servers:
        names = ("proxy_buffering", "proxy_buffer_size", "proxy_buffers", "proxy_busy_buffers_size",
                 "proxy_temp_path", "proxy_max_temp_file_size")
        values = {n: _directive(server, n) for n in names}
        problems = []
        if str((values["proxy_buffering"].get("args") or ["on"])[0]).lower() != "on":
            problems.append(f"proxy_buffering {_shown(values['proxy_buffering'])}")
        size = _size_of(values["proxy_buffer_size"])
        if size is None or size < min_buffer:
            problems.append(f"proxy_buffer_size {_shown(values['proxy_buffer_size'])} < "
                            f"{params['min_proxy_buffer_size']}")
        buffers = values["proxy_buffers"].get("args") or []
        per = size_bytes(str(buffers[1])) if len(buffers) == 2 and str(buffers[0]).isdigit() else None
        if per is None or int(buffers[0]) * per < min_total:
            problems.append(f"proxy_buffers {_shown(values['proxy_buffers'])} total < {params['min_proxy_buffers']}")
        busy = _size_of(values["proxy_busy_buffers_size"])
        if busy is None or busy < min_busy:
            problems.append(f"proxy_busy_buffers_size {_shown(values['proxy_busy_buffers_size'])} < "
                            f"{params['min_proxy_busy_buffers_size']}")
        if str(values["proxy_temp_path"].get("level", "")).startswith("default"):
            problems.append(f"proxy_temp_path is not set (nginx's default {values['proxy_temp_path'].get('path')})")
        temp = _size_of(values["proxy_max_temp_file_size"])
        if temp == 0:
            problems.append("proxy_max_temp_file_size 0 disables buffering large responses to temp files")
        elif temp is None or temp < min_temp:
            problems.append(f"proxy_max_temp_file_size {_shown(values['proxy_max_temp_file_size'])} < {min_temp} bytes")
        observed = {**values, "largest_layer_bytes": largest or None}
        if problems:
            yield failed(_server_subject(facts, server), "; ".join(problems), observed=observed, expected=expected)
        else:
            yield passed(_server_subject(facts, server), "buffers, temp path and temp-file cap as the guide sets "
                         "them", observed=observed, expected=expected)


@check(
    id="proxy.nginx-timeouts",
    title="nginx proxy timeouts allow long pushes",
    severity=Severity.MEDIUM,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX,),
    guide=f"{GUIDE_NGINX}: proxy_read_timeout, proxy_send_timeout, proxy_connect_timeout",
    rationale="With nginx's 60s defaults, a large layer push or a slow registry commit is cut off mid-"
    "transfer; a long connect timeout only hides a dead upstream.",
    passes_when="proxy_read_timeout and proxy_send_timeout >= 900s, proxy_connect_timeout <= 60s",
    remediation="Set proxy_read_timeout 900s; proxy_send_timeout 900s; proxy_connect_timeout 60s;.",
    generator="nginx-server",
    references=REFS,
    params={"min_read_seconds": 900, "min_send_seconds": 900, "max_connect_seconds": 60},
)
def nginx_timeouts(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    expected = {"proxy_read_timeout": f">= {params['min_read_seconds']}s",
                "proxy_send_timeout": f">= {params['min_send_seconds']}s",
                "proxy_connect_timeout": f"<= {params['max_connect_seconds']}s"}
    for server in servers:
        values = {n: _directive(server, n) for n in expected}
        seconds = {n: time_seconds(str((v.get("args") or [""])[0])) for n, v in values.items()}
        problems = []
        for name, minimum in (("proxy_read_timeout", params["min_read_seconds"]),
                              ("proxy_send_timeout", params["min_send_seconds"])):
            value = seconds[name]
            if value is None or value < float(minimum):
                problems.append(f"{name} {_shown(values[name])} < {minimum}s")
        connect = seconds["proxy_connect_timeout"]
        if connect is None or connect > float(params["max_connect_seconds"]):
            problems.append(f"proxy_connect_timeout {_shown(values['proxy_connect_timeout'])} > "
                            f"{params['max_connect_seconds']}s")
        observed = {n: {**v, "seconds": seconds[n]} for n, v in values.items()}
        if problems:
            yield failed(_server_subject(facts, server), "; ".join(problems), observed=observed, expected=expected)
        else:
            yield passed(_server_subject(facts, server), ", ".join(f"{n} {seconds[n]:g}s" for n in expected
                                                                   if seconds[n] is not None),
                         observed=observed, expected=expected)


@check(
    id="proxy.forwarded-headers",
    title="nginx passes Host and the forwarding headers to the registry",
    severity=Severity.LOW,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX,),
    guide=f"{GUIDE_NGINX}: location /v2/ proxy_set_header",
    rationale="Without Host and X-Forwarded-Proto the registry builds wrong upload Location URLs (http, or "
    "the upstream's name); without X-Real-IP / X-Forwarded-For its logs show only the proxy.",
    passes_when="the proxy_set_header list in effect for /v2/ (nginx inherits it only when the inner level "
    "has none) sets Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto to non-empty values",
    remediation="In location /v2/: proxy_set_header Host $host; X-Real-IP $remote_addr; X-Forwarded-For "
    "$proxy_add_x_forwarded_for; X-Forwarded-Proto $scheme (repeat every header at the level that sets any).",
    generator="nginx-server",
    references=REFS,
    params={"headers": ["Host", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto"]},
)
def forwarded_headers(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    wanted = [str(h) for h in params["headers"]]
    for server in servers:
        effective = server.get("proxy_set_header") or {}
        headers = {str(h.get("name", "")).lower(): h for h in effective.get("headers") or []}
        missing = [h for h in wanted if not str((headers.get(h.lower()) or {}).get("value") or "").strip()
                   or (h.lower() == "host" and str(headers[h.lower()].get("value")) == "$proxy_host")]
        observed = {"level": effective.get("level"), "headers": effective.get("headers")}
        if missing:
            note = " (nginx's defaults: Host $proxy_host, Connection close)" if effective.get("level") == "default" \
                else f" (the list in effect is the one at the {effective.get('level')} level)"
            yield failed(_server_subject(facts, server), "not passed to the registry: " + ", ".join(missing) + note,
                         observed=observed, expected=wanted)
        else:
            yield passed(_server_subject(facts, server), "passes " + ", ".join(wanted), observed=observed,
                         expected=wanted)


# ---- Apache --------------------------------------------------------------------------------------


def shown_where(entry: Mapping[str, Any]) -> str:
    """Where an effective value comes from, for messages of every proxy check: 'vhost, FILE:LINE',
    'server, FILE:LINE', or the server's default."""
    level = str(entry.get("level") or "default")
    where = entry.get("where")
    if level.startswith("default"):
        return level if level.startswith("default (") or not where else f"{level}, {where}"
    return f"{level}, {where}" if where else level


def _apache_vhost(ev: Evidence) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    facts = ev[APACHE]
    vhost = facts.get("vhost")
    if isinstance(vhost, dict):
        subject = f"Apache <VirtualHost {' '.join(vhost.get('addresses') or [])}> {vhost.get('server_name') or '-'} " \
                  f"at {vhost.get('where')}"
        return facts, vhost, subject
    return facts, None, f"Apache {facts.get('path')}"


def _no_vhost(facts: Mapping[str, Any], subject: str) -> Outcome:
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


def _canonical_suite(name: str) -> str:
    """IANA name of a suite given in OpenSSL or IANA spelling (unknown names stay as they are)."""
    suite = lookup(name)
    return suite.name if suite is not None else name


def _with_flags(name: str) -> str:
    suite = lookup(name)
    flags = sorted(f for f in (suite.flags if suite else ()) if f in ("CBC", "3DES", "RC4", "NULL", "EXPORT"))
    if suite is not None and not suite.forward_secret:
        flags.append("no forward secrecy")
    return f"{name} ({', '.join(flags)})" if flags else name


def _explicit_ciphers(text: str) -> list[str] | None:
    """The suites of a cipher string that only lists concrete suite names, else None."""
    tokens = [t for t in text.replace(",", ":").replace(" ", ":").split(":") if t]
    if not tokens or any(t[0] in CIPHER_KEYWORD_CHARS for t in tokens):
        return None
    if all(lookup(t) is not None for t in tokens):
        return tokens
    return None


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
    allowed_ciphers = {_canonical_suite(str(c)) for c in params["allowed_tls12_ciphers"]}
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
        suites = [str(s["name"]) for s in expansion["suites"] if s.get("protocol") != "TLSv1.3"]
    elif cipher.get("value"):
        suites = _explicit_ciphers(str(cipher["value"]))
    if suites is None:
        undecided.append(f"cannot expand SSLCipherSuite {cipher.get('value')!r}: {expansion.get('error')}")
    else:
        weak = [s for s in suites if _canonical_suite(s) not in allowed_ciphers]
        if weak:
            problems.append(f"SSLCipherSuite {cipher.get('value')!r} ({shown_where(cipher)}) enables "
                            f"{len(weak)} suite(s) outside the allowlist: {', '.join(_with_flags(s) for s in weak)}")
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
