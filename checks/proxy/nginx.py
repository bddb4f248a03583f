"""proxy.nginx-* checks, judged on the effective configuration `config.nginx` records per server
block proxying /v2/ to the registry (an nginx that is not deployed makes every check `skip`).

proxy.nginx-tls, proxy.nginx-auth, proxy.nginx-recipe: nginx as the registry's edge (the
registry's own documentation recipe: nginx terminating TLS with auth_basic).
proxy.nginx-body, proxy.nginx-buffers, proxy.nginx-timeouts: the guide's buffer tuning.

A server that serves plaintext on loopback, or as the upstream of the Apache vhost, sits behind
another proxy (the guide's Apache + nginx stack): TLS and authentication are that proxy's, so these
checks `skip` it with the reason. Protocols and ciphers share the profile parameters and the
wording of proxy.apache-tls.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.ciphers import canonical_suite, explicit_ciphers, with_flags
from auditor.judge.proxies import behind_another_proxy
from auditor.judge.shapes import ConfigNginxRegistryServer, ConfigNginxRegistryServerAuthByUriItem
from auditor.judge.units import size_bytes, time_seconds
from auditor.model import Severity, Vantage

from ._nginx import GUIDE_NGINX, NGINX, _directive, _nginx_servers, _no_registry_server, _server_subject, _shown
from ._shared import HSTS, REFS, REFS_TLS, TLS_PARAMS, hsts_problem, shown_where

APACHE = "config.apache"
REGISTRY = "config.registry"
RECIPE = "the registry's documentation recipe (nginx terminating TLS)"
NGINX_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
API_VERSION_HEADER = "docker-distribution-api-version"
API_VERSION_SOURCE = "$upstream_http_docker_distribution_api_version"


def _where(entry: Mapping[str, Any]) -> str:
    """'server, /etc/nginx/x.conf:12' or "nginx's default ..." for a directive's effective value (the
    wording of every proxy check, Apache's included)."""
    shown = shown_where(entry)
    return "nginx's " + shown if shown.startswith("default") else shown


def _args(entry: Mapping[str, Any]) -> str:
    return " ".join(str(a) for a in entry.get("args") or []) or "(unset)"


def _behind(server: ConfigNginxRegistryServer, apache: Any) -> str | None:
    return behind_another_proxy(server, apache)


@check(
    id="proxy.nginx-tls",
    title="nginx terminating TLS for the registry enables only the profile's protocols and ciphers",
    severity=Severity.HIGH,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX, APACHE),
    guide=f"{RECIPE}: ssl_protocols, ssl_ciphers (the guide's SSLProtocol / SSLCipherSuite values)",
    rationale="A server block's ssl_protocols and ssl_ciphers (inherited from http, or nginx's defaults: "
    "TLSv1 and TLSv1.1 before nginx 1.23.4, HIGH:!aNULL:!MD5) decide what every client can be downgraded "
    "to; tls.protocols and tls.ciphers see the wire, this check names the config line to fix.",
    passes_when="every nginx server block that proxies /v2/ to the registry over TLS enables only the allowed "
    "protocols (TLSv1.2, TLSv1.3) and every TLS 1.2 suite its ssl_ciphers expands to (openssl ciphers -s -v) "
    "is in the allowlist, as in effect for that block (included snippets and nginx's defaults applied); "
    "with require_hsts, it adds Strict-Transport-Security with max-age >= hsts_min_max_age. Server blocks "
    "behind another proxy (plaintext, on loopback or as the upstream of the Apache vhost) are skipped",
    remediation="In the server block: ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers "
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384; ssl_prefer_server_ciphers on; reload nginx.",
    generator="nginx-server",
    references=REFS_TLS,
    params=TLS_PARAMS,
)
def nginx_tls(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    allowed_protocols = [str(p) for p in params["allowed_protocols"]]
    allowed_ciphers = {canonical_suite(str(c)) for c in params["allowed_tls12_ciphers"]}
    expected = {"protocols": allowed_protocols, "tls12_suites": [str(c) for c in params["allowed_tls12_ciphers"]]}
    for server in servers:
        subject = _server_subject(facts, server)
        tls = server.get("tls") or {}
        if not tls.get("ssl_listeners"):
            reason = _behind(server, ev.get(APACHE)) or \
                f"serves /v2/ in plaintext on {', '.join(tls.get('plaintext_listeners') or [])} (the wire: " \
                "auth.challenge-over-tls, net.registry-port-exposed)"
            yield skipped(subject, f"no TLS in this server block: it {reason}")
            continue
        problems: list[str] = []
        undecided: list[str] = []
        protocol = tls.get("ssl_protocols") or {}
        enabled = [p for p in NGINX_PROTOCOLS if p in (protocol.get("args") or [])]
        unknown = [str(a) for a in protocol.get("args") or [] if a not in NGINX_PROTOCOLS]
        extra = [p for p in enabled if p not in allowed_protocols]
        if extra:
            problems.append(f"ssl_protocols {_args(protocol)!r} ({_where(protocol)}) enables {', '.join(extra)}")
        if unknown:
            undecided.append(f"ssl_protocols values not understood: {', '.join(unknown)}")
        if not enabled:
            problems.append(f"ssl_protocols {_args(protocol)!r} ({_where(protocol)}) enables no protocol")
        commands = tls.get("ssl_conf_command") or []
        overriding = [c for c in commands if str((c.get("args") or [""])[0]).lower()
                      in ("protocol", "minprotocol", "maxprotocol", "cipherstring", "ciphersuites")]
        if overriding:
            undecided.append("ssl_conf_command overrides protocols or ciphers: "
                             + ", ".join(f"{' '.join(c['args'])} ({c.get('where')})" for c in overriding))
        cipher = tls.get("ssl_ciphers") or {}
        expansion = tls.get("cipher_expansion") or {}
        suites: list[str] | None = None
        if expansion.get("suites") is not None:
            suites = [str(s["name"]) for s in expansion["suites"] if s.get("protocol") != "TLSv1.3"]
        elif cipher.get("args"):
            suites = explicit_ciphers(_args(cipher))
        if suites is None:
            undecided.append(f"cannot expand ssl_ciphers {_args(cipher)!r}: {expansion.get('error')}")
        elif any(p in enabled for p in ("TLSv1", "TLSv1.1", "TLSv1.2")):
            weak = [s for s in suites if canonical_suite(s) not in allowed_ciphers]
            if weak:
                problems.append(f"ssl_ciphers {_args(cipher)!r} ({_where(cipher)}) enables {len(weak)} suite(s) "
                                f"outside the allowlist: {', '.join(with_flags(s) for s in weak)}")
            if not suites:
                problems.append(f"ssl_ciphers {_args(cipher)!r} ({_where(cipher)}) enables no TLS 1.2 suite")
        headers = (server.get("add_header") or {}).get("headers") or []
        hsts = hsts_problem(headers, params, f"add_header at the {(server.get('add_header') or {}).get('level')} "
                            "level")
        if hsts:
            problems.append(hsts)
        observed = {"ssl_listeners": tls.get("ssl_listeners"), "ssl_protocols": protocol,
                    "protocols_enabled": enabled, "ssl_ciphers": cipher, "tls12_suites": suites,
                    "ssl_conf_command": commands, "expansion_tool": expansion.get("tool"),
                    "hsts": [h for h in headers if str(h.get("name", "")).lower() == HSTS]}
        if problems:
            yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
        elif undecided:
            yield errored(subject, "; ".join(undecided), observed=observed, expected=expected)
        else:
            yield passed(subject, f"{', '.join(enabled)}, suites {', '.join(suites or [])} "
                         f"(ssl_protocols: {_where(protocol)}; ssl_ciphers: {_where(cipher)})",
                         observed=observed, expected=expected)


def _token_auth(ev: Evidence) -> tuple[bool, Any]:
    registry = ev.get(REGISTRY)
    config = registry.get("config") if isinstance(registry, dict) else None
    auth = config.get("auth") if isinstance(config, dict) and isinstance(config.get("auth"), dict) else {}
    return isinstance(auth, dict) and isinstance(auth.get("token"), dict), registry


def _uri_problems(entry: ConfigNginxRegistryServerAuthByUriItem,
                  user_files: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Why a request for entry["uri"] reaches the registry without authentication (empty: it does not)."""
    returned = entry.get("return") or {}
    code = str((returned.get("args") or [""])[0])
    if code.isdigit() and int(code) >= 400:
        return []  # refused before it reaches anything
    if not entry.get("to_registry"):
        return []  # not proxied to the registry (static files, another upstream)
    basic = entry.get("auth_basic") or {}
    request = entry.get("auth_request") or {}
    basic_on = bool(basic.get("args")) and str(basic["args"][0]).lower() != "off"
    request_on = bool(request.get("args")) and str(request["args"][0]).lower() != "off"
    user_file = entry.get("auth_basic_user_file") or {}
    problems: list[str] = []
    if basic_on and not user_file.get("args"):
        problems.append(f"auth_basic {_args(basic)!r} ({_where(basic)}) has no auth_basic_user_file: nginx then "
                        "authenticates nobody")
        basic_on = False
    if not basic_on and not request_on:
        shown = f"auth_basic {_args(basic)} ({_where(basic)})"
        if entry.get("limit_except"):
            shown += "; limit_except " + ", ".join(" ".join(le["methods"]) for le in entry.get("limit_except") or []) \
                + " guards only the other methods"
        problems.append(f"no authentication ({shown})")
    satisfy = entry.get("satisfy") or {}
    access = entry.get("access") or {}
    allows = [r for r in access.get("rules") or [] if r.get("directive") == "allow"]
    if (basic_on or request_on) and str((satisfy.get("args") or ["all"])[0]).lower() == "any" and allows:
        who = ", ".join(f"allow {' '.join(r['args'])} ({r['where']})" for r in allows)
        everyone = any(r.get("args") == ["all"] for r in allows)
        problems.append(f"satisfy any ({_where(satisfy)}) with {who} lets "
                        + ("everyone" if everyone else "those addresses") + " in without a password")
    if basic_on and user_file.get("path"):
        facts = user_files.get(str(user_file["path"])) or {}
        if facts and not facts.get("exists"):
            problems.append(f"auth_basic_user_file {user_file['path']} ({_where(user_file)}) does not exist")
    return problems


@check(
    id="proxy.nginx-auth",
    title="nginx requires authentication on every /v2/ location (or the registry uses token auth)",
    severity=Severity.CRITICAL,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX, REGISTRY, APACHE),
    guide=f"{RECIPE}: auth_basic, auth_basic_user_file",
    rationale="Without it anyone who reaches nginx can pull every image and, with the registry's defaults, "
    "push and delete. nginx picks one location per request (exact, longest prefix, ^~, regex): a "
    "`location /v2/_catalog` or a regex location without auth, `auth_basic off`, or `satisfy any` with "
    "an `allow` opens part of the API while /v2/ itself asks for a password.",
    passes_when="for /v2/, /v2/_catalog, tags, manifests, blobs and blob uploads, the location nginx selects "
    "either refuses the request or authenticates it (auth_basic with an existing auth_basic_user_file, or "
    "auth_request to a token service) with no `satisfy any` + `allow` hole; or the registry config has "
    "token authentication (auth.token). Server blocks behind another proxy (plaintext, on loopback or as the "
    "upstream of the Apache vhost) are skipped",
    remediation="In the server block (or location /v2/): auth_basic \"Registry realm\"; auth_basic_user_file "
    "/etc/nginx/conf.d/nginx.htpasswd; remove `satisfy any`, `allow all` and `auth_basic off` from "
    "locations matching /v2/.",
    generator="nginx-server",
    references=("NIST SP 800-190 4.2.2 (registry: stale or insufficient authentication)",),
)
def nginx_auth(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    token, registry = _token_auth(ev)
    user_files = {str(f.get("path")): f for f in facts.get("auth_user_files") or []}
    expected = "authentication (auth_basic + existing user file, or auth_request) on every /v2/ location, no " \
               "satisfy any + allow hole (or registry auth.token)"
    for server in servers:
        subject = _server_subject(facts, server)
        behind = _behind(server, ev.get(APACHE))
        if behind:
            yield skipped(subject, f"not judged: this server block {behind} (proxy.apache-auth judges Apache)")
            continue
        if token:
            yield passed(subject, "the registry authenticates with tokens (auth.token in "
                         f"{registry.get('path') if isinstance(registry, dict) else 'its config'})",
                         observed={"registry_auth": "token"}, expected=expected)
            continue
        by_problem: dict[str, list[str]] = {}
        observed: dict[str, Any] = {}
        for entry in server.get("auth_by_uri") or []:
            uri = str(entry.get("uri"))
            observed[uri] = {k: entry.get(k) for k in ("location", "to_registry", "return", "auth_basic",
                                                         "auth_basic_user_file", "auth_request", "satisfy",
                                                         "access", "limit_except")}
            where = (entry.get("location") or {}).get("where")
            for problem in _uri_problems(entry, user_files):
                key = f"{problem} in location {(entry.get('location') or {}).get('match')} ({where})" if where \
                    else problem
                by_problem.setdefault(key, []).append(uri)
        problems = [f"{problem} for {', '.join(uris)}" for problem, uris in by_problem.items()]
        if problems:
            if registry is None and ev.state(REGISTRY) != "not_applicable":
                problems.append(f"and the registry config could not be read to look for token auth "
                                f"({ev.reason(REGISTRY)})")
                yield errored(subject, "; ".join(problems), observed=observed, expected=expected)
            else:
                yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
            continue
        files = sorted({str((e.get("auth_basic_user_file") or {}).get("path")) for e in server.get("auth_by_uri") or []
                        if (e.get("auth_basic_user_file") or {}).get("path")})
        yield passed(subject, f"every /v2/ request is authenticated ({', '.join(files) or 'auth_request'})",
                     observed=observed, expected=expected)


def _api_version_header(server: ConfigNginxRegistryServer, maps: list[Mapping[str, Any]]) -> tuple[str | None, Any]:
    """(problem or None, observed) for the Docker-Distribution-Api-Version header nginx adds."""
    added = server.get("add_header") or {}
    found = [h for h in added.get("headers") or [] if str(h.get("name", "")).lower() == API_VERSION_HEADER]
    observed: dict[str, Any] = {"add_header": found, "level": added.get("level")}
    if not found:
        level = added.get("level")
        note = "" if level == "default" else \
            f" (the add_header list in effect is the one at the {level} level: nginx inherits add_header only " \
            "when a level has none)"
        location = server.get("location") or {}
        problem = (f"no `add_header Docker-Distribution-Api-Version ... always` in the server block "
                   f"({server.get('where')}) or its location {location.get('match')} ({location.get('where')}){note}")
        return problem, observed
    header = found[-1]
    value = str(header.get("value") or "")
    if not header.get("always"):
        return (f"add_header Docker-Distribution-Api-Version ({header.get('where')}) lacks `always`: nginx's own "
                "401 responses go out without it"), observed
    if value.startswith("$"):
        source = next((m for m in maps if m.get("variable") == value), None)
        observed["map"] = source
        if source is None:
            return f"{value} ({header.get('where')}) is not set by a map in the http block", observed
        defaults = [e for e in source.get("entries") or [] if e and e[0] in ("''", "", '""', "default")]
        if source.get("source") != API_VERSION_SOURCE or not any(len(e) > 1 and e[1] == "registry/2.0"
                                                                  for e in defaults):
            return (f"map {source.get('source')} {value} ({source.get('where')}) does not default the upstream's "
                    "header to registry/2.0"), observed
        return None, observed
    if value.strip("'\"") != "registry/2.0":
        return f"add_header Docker-Distribution-Api-Version {value} ({header.get('where')}) is not registry/2.0", \
            observed
    return None, observed


@check(
    id="proxy.nginx-recipe",
    title="nginx at the edge follows the registry's recipe: API version header, chunked transfer encoding",
    severity=Severity.MEDIUM,
    area="proxy",
    vantage=Vantage.INSIDE,
    needs=(NGINX, APACHE),
    guide=f"{RECIPE}: map $upstream_http_docker_distribution_api_version, add_header ... always, "
    "chunked_transfer_encoding on",
    rationale="Docker clients look for Docker-Distribution-Api-Version: registry/2.0 on the /v2/ answer; "
    "nginx's own 401 (auth_basic) carries no upstream header, so the recipe maps the upstream's value "
    "with a registry/2.0 default and adds it `always`. With chunked_transfer_encoding off, nginx "
    "cannot stream responses of unknown length and pushes and pulls through it break.",
    passes_when="in every server block at the edge that proxies /v2/ (an ssl or non-loopback listener): "
    "add_header Docker-Distribution-Api-Version with `always`, its value registry/2.0 or a map of "
    "$upstream_http_docker_distribution_api_version defaulting to registry/2.0; chunked_transfer_encoding "
    "on (nginx's default). Server blocks behind another proxy are skipped",
    remediation="In the http block: map $upstream_http_docker_distribution_api_version "
    "$docker_distribution_api_version { '' 'registry/2.0'; } In the server block: add_header "
    "'Docker-Distribution-Api-Version' $docker_distribution_api_version always; chunked_transfer_encoding on;",
    generator="nginx-server",
    references=REFS,
)
def nginx_recipe(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts, servers = _nginx_servers(ev)
    if not servers:
        yield _no_registry_server(facts)
        return
    for server in servers:
        subject = _server_subject(facts, server)
        behind = _behind(server, ev.get(APACHE))
        if behind:
            yield skipped(subject, f"not judged: this server block {behind}; the recipe is for nginx at the edge")
            continue
        problems: list[str] = []
        header_problem, observed = _api_version_header(server, list(facts.get("maps") or []))
        if header_problem:
            problems.append(header_problem)
        chunked = _directive(server, "chunked_transfer_encoding")
        observed["chunked_transfer_encoding"] = chunked
        if str((chunked.get("args") or ["on"])[0]).lower() != "on":
            problems.append(f"chunked_transfer_encoding {_args(chunked)} ({_where(chunked)})")
        expected = {"add_header": "Docker-Distribution-Api-Version registry/2.0 (mapped) always",
                    "chunked_transfer_encoding": "on"}
        if problems:
            yield failed(subject, "; ".join(problems), observed=observed, expected=expected)
        else:
            yield passed(subject, f"Docker-Distribution-Api-Version added always; chunked_transfer_encoding "
                         f"{_args(chunked) if chunked.get('args') else 'on'} ({_where(chunked)})",
                         observed=observed, expected=expected)


__all__ = ["GUIDE_NGINX", "nginx_auth", "nginx_recipe", "nginx_tls"]


# ---- the guide's buffer tuning -----------------------------------------------------------------

LAYOUT = "storage.layout"


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
