"""Generator `nginx-server`: the guide's server block for the registry, spliced into the live file.

The server block that proxies /v2/ is re-rendered from a template: the site's listen, server_name,
upstream, temp paths and every directive the guide does not govern are kept; buffer sizes and
timeouts are the guide's, or the site's own when those are larger (timeouts: longer; connect:
shorter). Everything outside that block is left byte for byte.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import crossplane

from auditor.judge.proxies import behind_another_proxy
from auditor.judge.units import size_bytes, time_seconds

from .model import FileChange, Plan, TextRemedy
from .render import render
from .site import Site, hold_chains, read_live, split_where

NAME = "nginx-server"
CHECKS = ("proxy.nginx-body", "proxy.nginx-buffers", "proxy.nginx-timeouts", "proxy.forwarded-headers",
          "proxy.nginx-tls", "proxy.nginx-auth", "proxy.nginx-recipe")
TLS = ("ssl_protocols", "ssl_ciphers", "ssl_prefer_server_ciphers")
API_VERSION_MAP = ("map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {",
                   "    '' 'registry/2.0';", "}")
API_VERSION_HEADER = "add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;"
EDGE_CHECKS = ("proxy.nginx-tls", "proxy.nginx-auth", "proxy.nginx-recipe")
WIRE_CHECKS = ("tls.protocols", "tls.ciphers", "tls.tls13", "http.hsts", "tls.ocsp-stapling")
TLS_CHECKS = ("http.hsts", "tls.ocsp-stapling")  # written into a server block that terminates TLS
MANAGED = {
    "client_max_body_size", "client_body_temp_path", "proxy_buffering", "proxy_buffer_size", "proxy_buffers",
    "proxy_busy_buffers_size", "proxy_temp_path", "proxy_max_temp_file_size", "proxy_read_timeout",
    "proxy_send_timeout", "proxy_connect_timeout", "ssl_stapling", "ssl_stapling_verify",
}
HSTS_MAX_AGE = 63072000
HEAD = ("listen", "server_name")
GUIDE_HEADERS = (("Host", "$host"), ("X-Real-IP", "$remote_addr"),
                 ("X-Forwarded-For", "$proxy_add_x_forwarded_for"), ("X-Forwarded-Proto", "$scheme"))
MIB = 1024 * 1024


def _line(d: dict[str, Any]) -> str:
    return crossplane.build([{"directive": d["directive"], "args": d["args"]}]).strip()


def _block_lines(d: dict[str, Any]) -> list[str]:
    """A directive with its block, rendered by crossplane, one list item per line."""
    return crossplane.build([_strip(d)], indent=4).splitlines()


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"directive": d["directive"], "args": d["args"]}
    if "block" in d:
        out["block"] = [_strip(c) for c in d["block"]]
    return out


def _bigger_size(site_value: list[str] | None, guide: str) -> str:
    if site_value:
        have = size_bytes(site_value[0])
        want = size_bytes(guide)
        if have is not None and want is not None and have >= want:
            return site_value[0]
    return guide


def _buffers(site_value: list[str] | None, guide: str) -> str:
    if site_value and len(site_value) == 2:
        count, size = site_value
        g_count, g_size = guide.split()
        have = size_bytes(size)
        if count.isdigit() and have is not None and int(count) >= int(g_count) and have >= (size_bytes(g_size) or 0):
            return f"{count} {size}"
    return guide


def _timeout(site_value: list[str] | None, guide_seconds: int, longer: bool) -> str:
    if site_value:
        have = time_seconds(site_value[0])
        if have is not None and ((longer and have >= guide_seconds) or (not longer and 0 < have <= guide_seconds)):
            return site_value[0]
    return f"{guide_seconds}s"


def find_block_end(lines: list[str], start: int) -> int:
    """Index of the line closing the block opened at or after line index `start` (brace matching)."""
    depth = 0
    opened = False
    for index in range(start, len(lines)):
        quote = ""
        for char in lines[index]:
            if quote:
                if char == quote:
                    quote = ""
                continue
            if char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char == "{":
                depth += 1
                opened = True
            elif char == "}":
                depth -= 1
                if opened and depth == 0:
                    return index
    raise ValueError(f"no closing brace for the block at line {start + 1}")


def _find_server(parsed: list[dict[str, Any]], line: int) -> dict[str, Any] | None:
    """The `server` directive whose block holds the directive at `line` (or starts there)."""
    best = None
    for d in parsed:
        if d["directive"] == "server" and d["line"] <= line and (best is None or d["line"] > best["line"]):
            best = d
        if "block" in d:
            inner = _find_server(d["block"], line)
            if inner is not None and (best is None or inner["line"] > best["line"]):
                best = inner
    return best


def _is_hole(d: dict[str, Any]) -> bool:
    """`satisfy any`, `allow all` or `auth_basic off`: what lets a request past nginx's auth."""
    args = [a.lower() for a in d.get("args") or []]
    return ((d["directive"] == "satisfy" and args == ["any"]) or (d["directive"] == "allow" and args == ["all"])
            or (d["directive"] == "auth_basic" and args == ["off"]))


def _without_holes(d: dict[str, Any]) -> dict[str, Any]:
    """A location block with the auth holes removed (nested blocks too)."""
    out = dict(d)
    if "block" in d:
        out["block"] = [_without_holes(c) for c in d["block"] if not _is_hole(c)]
    return out


def _dropped(d: dict[str, Any], fix_tls: bool, fix_auth: bool, fix_recipe: bool) -> bool:
    """Server-level directives the generator replaces for the checks it fixes."""
    return ((fix_tls and d["directive"] in TLS) or (fix_recipe and d["directive"] == "chunked_transfer_encoding")
            or (fix_auth and _is_hole(d)))


def _tls_lines(params: dict[str, Any]) -> list[str]:
    ciphers = ":".join(str(c) for c in params.get("allowed_tls12_ciphers") or [])
    return [f"ssl_protocols {' '.join(str(p) for p in params.get('allowed_protocols') or [])};",
            f"ssl_ciphers {ciphers};", "ssl_prefer_server_ciphers on;"]


def server_text(server: dict[str, Any], indent: str, params: dict[str, Any], largest_layer: int,
                checks: tuple[str, ...], temp_paths: dict[str, str] | None = None, *,
                edge: dict[str, Any] | None = None) -> str:
    """Render the hardened server block for a crossplane `server` directive.

    `edge` (nginx terminating TLS): {"tls_params": proxy.nginx-tls params, "user_file": the password
    file for auth_basic or None, "map": whether to emit the recipe's API-version map before the block}.
    """
    edge = edge or {}
    fix_tls = "proxy.nginx-tls" in checks
    fix_auth = "proxy.nginx-auth" in checks
    fix_recipe = "proxy.nginx-recipe" in checks
    values: dict[str, list[str]] = {}
    head: list[str] = []
    kept: list[str] = []
    other_blocks: list[str] = []
    location = None
    tls = any(d["directive"] == "ssl_certificate" or (d["directive"] == "listen" and "ssl" in d["args"])
              for d in server.get("block", []))
    for d in server.get("block", []):
        if d["directive"] == "add_header" and d["args"] and d["args"][0].lower() == "strict-transport-security":
            continue
        if d["directive"] in HEAD:
            head.append(_line(d))
        elif d["directive"] in MANAGED:
            values[d["directive"]] = d["args"]
        elif _dropped(d, fix_tls, fix_auth, fix_recipe):
            continue
        elif d["directive"] == "location" and d["args"] and d["args"][-1] in ("/v2/", "/v2", "/") and location is None:
            location = d
        elif "block" in d:
            other_blocks += _block_lines(_without_holes(d) if fix_auth and d["directive"] == "location" else d)
        else:
            kept.append(_line(d))
    location_lines: list[str] = []
    headers_seen: set[str] = set()
    loc_args = " ".join(location["args"]) if location else "/v2/"
    authenticated = any(d["directive"] in ("auth_basic", "auth_request") and not _is_hole(d)
                        for d in [*server.get("block", []), *(location or {}).get("block", [])])
    for d in (location or {}).get("block", []):
        if d["directive"] in MANAGED:
            values.setdefault(d["directive"], d["args"])
            continue
        if fix_auth and _is_hole(d):
            continue
        if fix_recipe and d["directive"] == "add_header" and d["args"] and \
                d["args"][0].strip("'\"").lower() == "docker-distribution-api-version":
            continue
        if tls and d["directive"] == "add_header" and d["args"] and \
                d["args"][0].strip("'\"").lower() == "strict-transport-security":
            continue  # written below with the profile's max-age
        if d["directive"] == "proxy_set_header" and d["args"]:
            headers_seen.add(d["args"][0].lower())
        location_lines += _block_lines(_without_holes(d) if fix_auth else d) if "block" in d else [_line(d)]
    if fix_auth and not authenticated and edge.get("user_file"):
        location_lines[:0] = ['auth_basic "Registry realm";', f"auth_basic_user_file {edge['user_file']};"]
    if fix_recipe:
        location_lines.append(API_VERSION_HEADER)
    for name, value in GUIDE_HEADERS:
        if name.lower() not in headers_seen:
            location_lines.append(f"proxy_set_header {name} {value};")
    hsts_max_age = max(HSTS_MAX_AGE, int(params.get("hsts_min_max_age") or 0))
    if tls and any(line.startswith("add_header ") for line in location_lines):
        # nginx inherits the server's add_header only into locations that set none of their own
        location_lines.append(f'add_header Strict-Transport-Security "max-age={hsts_max_age}" always;')
    max_temp = _bigger_size(values.get("proxy_max_temp_file_size"), str(params.get("min_proxy_max_temp_file_size",
                                                                                     "4096m")))
    need = size_bytes(max_temp) or 0
    if largest_layer > need:
        max_temp = f"{math.ceil(largest_layer / MIB)}m"
    before = [f"{indent}{line}\n" for line in API_VERSION_MAP] + ["\n"] if fix_recipe and edge.get("map") else []
    return "".join(before) + render(
        "nginx-server.conf.j2", NAME, checks, indent=indent, head=head, kept=kept, other_blocks=other_blocks,
        tls_lines=_tls_lines(edge.get("tls_params") or {}) if fix_tls else [],
        chunked=fix_recipe,
        location_args=loc_args, location_lines=location_lines,
        client_body_temp_path=(temp_paths or {}).get("client_body_temp_path")
        or (values.get("client_body_temp_path") or [""])[0],
        proxy_temp_path=(temp_paths or {}).get("proxy_temp_path") or (values.get("proxy_temp_path") or [""])[0],
        proxy_buffer_size=_bigger_size(values.get("proxy_buffer_size"), str(params.get("min_proxy_buffer_size",
                                                                                        "32k"))),
        proxy_buffers=_buffers(values.get("proxy_buffers"), str(params.get("min_proxy_buffers", "16 64k"))),
        proxy_busy_buffers_size=_bigger_size(values.get("proxy_busy_buffers_size"),
                                             str(params.get("min_proxy_busy_buffers_size", "128k"))),
        proxy_max_temp_file_size=max_temp,
        proxy_read_timeout=_timeout(values.get("proxy_read_timeout"), 900, True),
        proxy_send_timeout=_timeout(values.get("proxy_send_timeout"), 900, True),
        proxy_connect_timeout=_timeout(values.get("proxy_connect_timeout"), 60, False),
        tls=tls, hsts_max_age=hsts_max_age, stapling=edge.get("stapling", True),
    )


def rewrite(path: str, text: str, at_line: int, params: dict[str, Any], largest_layer: int,
            checks: tuple[str, ...], temp_paths: dict[str, str] | None = None, *,
            edge: dict[str, Any] | None = None) -> str:
    """The file `text` with the server block around `at_line` replaced by the hardened one."""
    parsed = crossplane.parse(path, single=True, comments=False, catch_errors=False)
    server = _find_server(parsed["config"][0]["parsed"], at_line)
    if server is None:
        raise ValueError(f"no server block around {path}:{at_line}")
    lines = text.splitlines(keepends=True)
    start = server["line"] - 1
    end = find_block_end(lines, start)
    opening = lines[start]
    indent = opening[: len(opening) - len(opening.lstrip())]
    block = server_text(server, indent, params, largest_layer, checks, temp_paths, edge=edge)
    return "".join(lines[:start]) + block + "".join(lines[end + 1:])


TEMP_DIRS = {"proxy_temp_path": "proxy_temp", "client_body_temp_path": "client_body"}


def temp_path_moves(site: Site) -> dict[str, str]:
    """Temp paths not on the (single) tmpfs the other one uses, moved under it
    (docs/guide-notes.md#nginx-temp-paths-on-tmpfs).

    nginx creates a missing temp directory (owned by its worker user) when it loads the config.
    """
    if "tmpfs.mounted" not in site.failing_ids():
        return {}
    paths = (site.value("host.tmpfs") or {}).get("paths") or []
    mounts = {(p.get("mount") or {}).get("mountpoint") for p in paths
              if (p.get("mount") or {}).get("fstype") == "tmpfs"}
    if len(mounts) != 1:
        return {}
    mountpoint = str(next(iter(mounts)))
    return {str(p["directive"]): f"{mountpoint.rstrip('/')}/{TEMP_DIRS[p['directive']]}" for p in paths
            if p.get("directive") in TEMP_DIRS and (p.get("mount") or {}).get("mountpoint") != mountpoint}




def issuer_available(server: dict[str, Any], file_text: str) -> bool:
    """Whether nginx can find the issuer of the server's certificates, which it needs to staple:
    an ssl_trusted_certificate (in the file), or every ssl_certificate file holding a chain.
    Without it `ssl_stapling on` only logs '"ssl_stapling" ignored, issuer certificate not found'."""
    if any(ln.strip().startswith("ssl_trusted_certificate") for ln in file_text.splitlines()):
        return True
    return hold_chains([d["args"][0] for d in server.get("block", [])
                        if d["directive"] == "ssl_certificate" and d["args"]])


def _stapling_possible(where: tuple[str, int] | None) -> bool:
    """issuer_available for the live server block at `where` (False when it cannot be read)."""
    if where is None:
        return False
    path, line = where
    try:
        parsed = crossplane.parse(path, single=True, comments=False, catch_errors=False)
        server = _find_server(parsed["config"][0]["parsed"], line)
        text = Path(path).read_text(errors="replace")
    except (OSError, crossplane.errors.NgxParserBaseException):
        return False
    return server is not None and issuer_available(server, text)


def generate(site: Site, plan: Plan) -> None:
    failing = site.failing_ids()
    claimed = tuple(c for c in (*CHECKS, *TLS_CHECKS) if c in failing)
    moves = temp_path_moves(site)
    if not claimed and not moves:
        return
    facts = site.value("config.nginx") or {}
    servers = facts.get("registry_servers") or []
    layout = site.value("storage.layout") or {}
    largest = int(((layout.get("largest_layer") or {}).get("bytes")) or 0)
    params = {**site.params("proxy.nginx-buffers"),
              "hsts_min_max_age": site.params("http.hsts").get("min_max_age") or 0}
    changed: dict[str, str] = {}
    wire: list[str] = []
    fixed: list[str] = []
    has_map = any(m.get("variable") == "$docker_distribution_api_version" for m in facts.get("maps") or [])
    for server in servers:
        edge = {"tls_params": site.params("proxy.nginx-tls"), "user_file": _user_file(site, server),
                "map": not has_map}
        edge_server = behind_another_proxy(server, site.value("config.apache")) is None
        mine = claimed if edge_server else tuple(c for c in claimed if c not in EDGE_CHECKS)
        if not (server.get("tls") or {}).get("ssl_listeners"):  # HSTS and stapling belong to a TLS server
            mine = tuple(c for c in mine if c not in TLS_CHECKS)
        if "proxy.nginx-auth" in mine and not edge["user_file"]:
            plan.notes.append(f"{NAME}: no password file is known for {server.get('where')} (give --htpasswd): "
                              "auth_basic not added")
            mine = tuple(c for c in mine if c != "proxy.nginx-auth")
        if "proxy.nginx-recipe" in mine:
            has_map = True  # one map per http block
        edge["stapling"] = _stapling_possible(split_where(server.get("where")))
        if "tls.ocsp-stapling" in mine and not edge["stapling"]:
            mine = tuple(c for c in mine if c != "tls.ocsp-stapling")
            plan.texts.append(TextRemedy("tls.ocsp-stapling", (str(server.get("where")),),
                                         "nginx cannot find the issuer of this server's certificates, so no "
                                         "ssl_stapling was written: name the issuer chain in ssl_trusted_certificate "
                                         "(or put it in ssl_certificate after the server certificate), make sure the "
                                         "certificate names an OCSP responder nginx can reach, then run remediate "
                                         "again.", NAME))
        wire += _wire_claims(server, mine, failing)
        fixed += mine
        where = split_where((server.get("location") or {}).get("where") or server.get("where"))
        if where is None:
            continue
        path, line = where
        if path not in changed:
            live = read_live(path)
            if live is None:
                plan.notes.append(f"{NAME}: {path} is not readable here: nothing generated")
                continue
            changed[path] = live.decode()
        try:
            changed[path] = rewrite_text(path, changed[path], line, params, largest, mine, moves, edge=edge)
        except (ValueError, crossplane.errors.NgxParserBaseException) as exc:
            plan.notes.append(f"{NAME}: cannot rewrite {path}: {exc}")
    for path, text in changed.items():
        live = read_live(path)
        if live is not None and text.encode() != live:
            note = "server block for /v2/ re-rendered; the rest of the file kept"
            if moves:
                note += "; " + ", ".join(f"{k} -> {v} (on the tmpfs, docs/guide-notes.md#nginx-temp-paths-on-tmpfs)"
                                         for k, v in sorted(moves.items()))
            checks = tuple(dict.fromkeys([*fixed, *wire]))
            plan.files.append(FileChange(path=path, generator=NAME, checks=checks, content=text.encode(),
                                         validate="nginx", service="nginx", note=note))
            plan.expected |= set(checks)




def _wire_claims(server: dict[str, Any], mine: tuple[str, ...], failing: set[str]) -> list[str]:
    """The outside checks this server's rewrite fixes: the wire's TLS, anonymous access."""
    out: list[str] = []
    if "proxy.nginx-tls" in mine and (server.get("tls") or {}).get("ssl_listeners"):
        out += [c for c in WIRE_CHECKS if c in failing]
    if "proxy.nginx-auth" in mine and "auth.anonymous-denied" in failing:
        out.append("auth.anonymous-denied")
    return out


def _user_file(site: Site, server: dict[str, Any]) -> str | None:
    """The password file auth_basic should use: the server's own, else one files.stat found."""
    named = server.get("auth_basic_user_files") or []
    if named:
        return str(named[0])
    files = [str(f.get("path")) for f in (site.value("files.stat") or {}).get("htpasswd") or [] if f.get("exists")]
    return files[0] if files else None


def rewrite_text(path: str, text: str, line: int, params: dict[str, Any], largest: int,
                 checks: tuple[str, ...], temp_paths: dict[str, str] | None = None, *,
                 edge: dict[str, Any] | None = None) -> str:
    """`rewrite` on text that may differ from the file on disk (several servers in one file)."""
    scratch = Path(path)
    if scratch.read_text() == text:
        return rewrite(path, text, line, params, largest, checks, temp_paths, edge=edge)
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as handle:
        handle.write(text)
    try:
        return rewrite(handle.name, text, line, params, largest, checks, temp_paths, edge=edge)
    finally:
        Path(handle.name).unlink(missing_ok=True)
