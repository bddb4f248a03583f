"""nginx configuration as nginx applies it, and the server that proxies /v2/ to the registry.

Contract: `load_from_disk(conf)` or `load_from_dump(text, conf)` (the output of `nginx -T`) parse
every file with crossplane and inline `include`s (globs relative to the config prefix, as nginx
does), giving a tree of :class:`Node`. `registry_facts(tree, ...)` returns JSON facts: every
server whose /v2/ location proxies to the registry, with the effective value (and where it was
set: http, server, location or nginx's default) of each directive the proxy.* and tmpfs.* checks
judge. Facts only: nothing here decides pass or fail.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import posixpath
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import crossplane

from auditor import bounded
from auditor.model import JSON

# Debian's build (nginx -V): used when `nginx -V` cannot be read.
DEBIAN_BUILD = {
    "prefix": "/usr/share/nginx",
    "proxy_temp_path": "/var/lib/nginx/proxy",
    "client_body_temp_path": "/var/lib/nginx/body",
}
# nginx's own defaults for the directives we report (x86-64: one page is 4k).
DEFAULTS: dict[str, list[str]] = {
    "client_max_body_size": ["1m"],
    "proxy_buffering": ["on"],
    "proxy_request_buffering": ["on"],
    "proxy_buffer_size": ["4k"],
    "proxy_buffers": ["8", "4k"],
    "proxy_busy_buffers_size": ["8k"],
    "proxy_max_temp_file_size": ["1024m"],
    "proxy_temp_file_write_size": ["8k"],
    "proxy_read_timeout": ["60s"],
    "proxy_send_timeout": ["60s"],
    "proxy_connect_timeout": ["60s"],
    "client_body_timeout": ["60s"],
    "proxy_http_version": ["1.0"],
    "ssl_ciphers": ["HIGH:!aNULL:!MD5"],
    "auth_basic": ["off"],
    "auth_request": ["off"],
    "satisfy": ["all"],
    "chunked_transfer_encoding": ["on"],
}
# nginx's default ssl_protocols: TLSv1.3 joined and TLSv1/TLSv1.1 left the default in 1.23.4.
OLD_DEFAULT_PROTOCOLS = ["TLSv1", "TLSv1.1", "TLSv1.2"]
NEW_DEFAULT_PROTOCOLS = ["TLSv1.2", "TLSv1.3"]
AUTH_DIRECTIVES = ("auth_basic", "auth_basic_user_file", "auth_request", "satisfy")
ACCESS_DIRECTIVES = ("allow", "deny")
# Where the registry's API must be authenticated: the base, the catalog, a manifest, a blob, uploads.
AUTH_URIS = ("/v2/", "/v2/_catalog", "/v2/library/app/tags/list", "/v2/library/app/manifests/latest",
             "/v2/library/app/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
             "/v2/library/app/blobs/uploads/")
PATH_DIRECTIVES = ("proxy_temp_path", "client_body_temp_path")
REPORTED = (*DEFAULTS, *PATH_DIRECTIVES, "ssl_protocols", "ssl_ciphers")
DEFAULT_PROXY_HEADERS = [["Host", "$proxy_host"], ["Connection", "close"]]
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
SAMPLE_URIS = ("/v2/", "/v2/myapp/backend/blobs/uploads/")
DUMP_HEADER = re.compile(r"^# configuration file (.+):$")


@dataclass
class Node:
    """One directive with its arguments, where it is written, and its block (None: no block)."""

    name: str
    args: list[str]
    file: str
    line: int
    block: list[Node] | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def children(self, name: str) -> list[Node]:
        return [n for n in self.block or [] if n.name == name]


@dataclass
class Tree:
    """The main file's directives with includes inlined, the files read and any parse errors."""

    main: str
    nodes: list[Node]
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


MAX_CONFIG_BYTES = 4 * 1024 * 1024
ParseFn = Callable[[str], tuple[list[dict], list[str]]]
GlobFn = Callable[[str], list[str]]


def _crossplane_file(path: str, shown: str) -> tuple[list[dict], list[str]]:
    """crossplane's parse of one file (includes not followed); errors name `shown`."""
    result = crossplane.parse(path, single=True, check_ctx=False, check_args=False, catch_errors=True)
    entry = result["config"][0] if result.get("config") else {"parsed": [], "errors": []}
    errors = [f"{shown}:{e.get('line')}: {e.get('error')}" for e in entry.get("errors") or []]
    errors += [f"{shown}: {e.get('error')}" for e in result.get("errors") or [] if not entry.get("errors")]
    return list(entry.get("parsed") or []), errors


def _to_nodes(items: Iterable[dict], file: str) -> list[Node]:
    out = []
    for item in items:
        block = item.get("block")
        out.append(Node(item["directive"], [str(a) for a in item.get("args") or []], file, int(item.get("line", 0)),
                        _to_nodes(block, file) if block is not None else None))
    return out


def _inline(nodes: list[Node], parse: ParseFn, glob: GlobFn, prefix: str, tree: Tree, depth: int) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        if node.name == "include" and node.args:
            pattern = node.args[0] if node.args[0].startswith("/") else posixpath.join(prefix, node.args[0])
            matches = glob(pattern)
            if not matches and not any(c in pattern for c in "*?["):
                tree.errors.append(f"{node.where()}: include {pattern}: no such file")
            for path in matches:
                if depth > 20:
                    tree.errors.append(f"{node.where()}: include nesting too deep at {path}")
                    continue
                out.extend(_load_file(path, parse, glob, prefix, tree, depth + 1))
            continue
        if node.block is not None:
            node.block = _inline(node.block, parse, glob, prefix, tree, depth)
        out.append(node)
    return out


def _load_file(path: str, parse: ParseFn, glob: GlobFn, prefix: str, tree: Tree, depth: int) -> list[Node]:
    items, errors = parse(path)
    tree.errors.extend(errors)
    if path not in tree.files:
        tree.files.append(path)
    return _inline(_to_nodes(items, path), parse, glob, prefix, tree, depth)


def load_from_disk(conf: str) -> Tree:
    """Parse `conf` and its includes from the filesystem (includes relative to conf's directory)."""
    import glob as globmod

    tree = Tree(conf, [])

    def parse(path: str) -> tuple[list[dict], list[str]]:
        try:  # crossplane opens the file itself: refuse what it must not read (bounded.read_bytes' rules)
            bounded.read_bytes(path, max_bytes=MAX_CONFIG_BYTES, what="nginx config")
        except bounded.InputError as exc:
            return [], [f"{path}: cannot read: {exc.reason}"]
        return _crossplane_file(path, path)

    def find(pattern: str) -> list[str]:
        if any(c in pattern for c in "*?["):
            return sorted(p for p in globmod.glob(pattern) if os.path.isfile(p))
        return [pattern] if os.path.exists(pattern) else []

    tree.nodes = _load_file(conf, parse, find, posixpath.dirname(conf), tree, 0)
    return tree


def split_dump(text: str) -> dict[str, str]:
    """`nginx -T` output split into {file path: content}, in dump order."""
    files: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        match = DUMP_HEADER.match(line)
        if match:
            if current is not None:
                files[current] = "\n".join(lines) + "\n"
            current, lines = match.group(1), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        files[current] = "\n".join(lines) + "\n"
    return files


def _component_glob(pattern: str, names: Sequence[str]) -> list[str]:
    """Paths among `names` matching a glob whose wildcards never cross '/' (as glob(3))."""
    parts = pattern.split("/")
    found = [n for n in names if len(n.split("/")) == len(parts)
             and all(fnmatch.fnmatchcase(a, b) for a, b in zip(n.split("/"), parts, strict=True))]
    return sorted(found)


def load_from_dump(text: str, conf: str) -> Tree:
    """Parse `nginx -T` output: each dumped file with crossplane, includes resolved in the dump."""
    files = split_dump(text)
    tree = Tree(conf, [])
    if conf not in files:
        tree.errors.append(f"the dump holds no file {conf}")
        return tree
    with tempfile.TemporaryDirectory(prefix="regaudit-nginx-") as tmp:
        copies: dict[str, str] = {}
        for index, (path, content) in enumerate(files.items()):
            copy = os.path.join(tmp, f"{index}.conf")
            with open(copy, "w", encoding="utf-8") as handle:
                handle.write(content)
            copies[path] = copy

        def parse(path: str) -> tuple[list[dict], list[str]]:
            if path not in copies:
                return [], [f"{path}: not in the nginx -T dump"]
            return _crossplane_file(copies[path], path)

        def find(pattern: str) -> list[str]:
            return _component_glob(pattern, list(files))

        tree.nodes = _load_file(conf, parse, find, posixpath.dirname(conf), tree, 0)
    return tree


# ---- values --------------------------------------------------------------------------------------

# ---- listen, locations, upstreams ----------------------------------------------------------------


def parse_listen_directive(args: Sequence[str], server_ssl: bool) -> dict[str, JSON]:
    """One `listen` directive: address, port, ssl, whether the address is loopback."""
    raw = args[0] if args else "80"
    params = list(args[1:])
    if raw.startswith("unix:"):
        return {"raw": raw, "address": raw, "port": None, "ssl": "ssl" in params or server_ssl,
                "loopback": True, "unix": True}
    host, port = "*", 80
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 80
    elif raw.isdigit():
        port = int(raw)
    elif ":" in raw:
        host, _, port_text = raw.rpartition(":")
        port = int(port_text) if port_text.isdigit() else 80
    else:
        host = raw
    return {"raw": " ".join(args), "address": host, "port": port, "ssl": "ssl" in params or server_ssl,
            "loopback": _is_loopback(host), "unix": False}


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def location_matches(node: Node, uri: str) -> tuple[str, int] | None:
    """(kind, prefix length) when location `node` matches `uri`; kind is exact, prefix, ^~ or regex."""
    args = node.args
    if not args:
        return None
    if len(args) >= 2 and args[0] in ("=", "^~", "~", "~*"):
        modifier, pattern = args[0], args[1]
    elif args[0].startswith("@"):
        return None
    else:
        modifier, pattern = "", args[0]
    if modifier == "=":
        return ("exact", len(pattern)) if uri == pattern else None
    if modifier in ("~", "~*"):
        try:
            found = re.search(pattern, uri, re.IGNORECASE if modifier == "~*" else 0)
        except re.error:
            return None
        return ("regex", 0) if found else None
    if uri.startswith(pattern):
        return ("^~" if modifier == "^~" else "prefix", len(pattern))
    return None


def select_location(block: Sequence[Node], uri: str) -> list[Node]:
    """The chain of (nested) locations nginx picks for `uri` in a server or location block."""
    candidates = [(n, location_matches(n, uri)) for n in block if n.name == "location"]
    matching = [(n, m) for n, m in candidates if m is not None]
    exact = [n for n, m in matching if m[0] == "exact"]
    if exact:
        return [exact[0]]
    prefixes = [(n, m) for n, m in matching if m[0] in ("prefix", "^~")]
    best = max(prefixes, key=lambda item: item[1][1], default=None)
    chosen: Node | None = None
    if best is not None and best[1][0] == "^~":
        chosen = best[0]
    else:
        regex = next((n for n, m in matching if m[0] == "regex"), None)
        chosen = regex if regex is not None else (best[0] if best else None)
    if chosen is None:
        return []
    inner = select_location(chosen.block or [], uri)
    return [chosen, *inner]


def upstreams(http: Node | None) -> dict[str, list[str]]:
    """upstream name -> its `server` addresses."""
    out: dict[str, list[str]] = {}
    for node in http.children("upstream") if http else []:
        if node.args:
            out[node.args[0]] = [s.args[0] for s in node.children("server") if s.args]
    return out


def proxy_targets(url: str, named: dict[str, list[str]]) -> tuple[list[str], str]:
    """host:port addresses a proxy_pass URL reaches, and how they were found."""
    if "$" in url:
        return [], "contains variables (resolved at request time)"
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        explicit_port = None if parts.netloc.startswith("unix:") else parts.port
    except ValueError as exc:  # unbalanced [ ], a port that is not a number or out of range
        return [], f"not a valid URL ({exc})"
    if parts.netloc.startswith("unix:"):
        return [parts.netloc], "unix socket"
    host = parts.hostname or ""
    if host in named and explicit_port is None:
        return list(named[host]), f"upstream {host}"
    port = explicit_port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    return [f"{shown}:{port}"], "address in proxy_pass"


def address_is_registry(address: str, registry: dict[str, JSON]) -> bool:
    """Whether a host:port upstream address reaches the registry's listener (or, when several
    registries run on the host, one of the others listed under registry["also"])."""
    if address.startswith("unix:"):
        return False
    if any(_reaches(address, other) for other in registry.get("also") or []):
        return True
    return _reaches(address, registry)


def _reaches(address: str, registry: dict[str, JSON]) -> bool:
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not port_text.isdigit() or int(port_text) != registry.get("port"):
        return False
    reg_host = str(registry.get("host") or "")
    if reg_host in ("", "0.0.0.0", "::", "*"):
        return True
    if host == reg_host:
        return True
    return _is_loopback(host) and _is_loopback(reg_host)


# ---- effective values ----------------------------------------------------------------------------


def _last(nodes: Sequence[Node], name: str) -> Node | None:
    found = [n for n in nodes if n.name == name]
    return found[-1] if found else None


def effective(levels: Sequence[tuple[str, Sequence[Node]]], name: str) -> dict[str, JSON]:
    """The value of `name` as inherited: the innermost level that sets it wins, else the default."""
    for level, nodes in reversed(levels):
        node = _last(nodes, name)
        if node is not None:
            return {"args": node.args, "level": level, "where": node.where()}
    default = DEFAULTS.get(name)
    return {"args": list(default) if default else None, "level": "default", "where": None}


def effective_headers(levels: Sequence[tuple[str, Sequence[Node]]]) -> dict[str, JSON]:
    """proxy_set_header as nginx inherits it: only from the innermost level that has any."""
    for level, nodes in reversed(levels):
        found = [n for n in nodes if n.name == "proxy_set_header"]
        if found:
            headers = [{"name": n.args[0] if n.args else "", "value": _header_value(n), "where": n.where()}
                       for n in found]
            return {"level": level, "headers": headers}
    return {"level": "default", "headers": [{"name": k, "value": v, "where": None} for k, v in DEFAULT_PROXY_HEADERS]}


def _header_value(node: Node) -> str:
    value = " ".join(node.args[1:])
    if node.args and node.args[0].lower() in SECRET_HEADERS:
        return "<redacted>"
    return value


def absolute_path(args: list[str] | None, prefix: str) -> str | None:
    if not args:
        return None
    path = args[0]
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(prefix, path))


@dataclass(frozen=True)
class Build:
    """What `nginx -V` says about the binary: its prefix and compiled-in temp paths."""

    prefix: str = DEBIAN_BUILD["prefix"]
    proxy_temp_path: str = DEBIAN_BUILD["proxy_temp_path"]
    client_body_temp_path: str = DEBIAN_BUILD["client_body_temp_path"]
    source: str = "Debian defaults"
    version: str | None = None

    def default_protocols(self) -> tuple[list[str], str]:
        """nginx's ssl_protocols when unset, and how that was decided (Debian bookworm's 1.22 when
        the version is unknown)."""
        numbers = tuple(int(x) for x in re.findall(r"\d+", self.version or "")[:3])
        if numbers and numbers >= (1, 23, 4):
            return list(NEW_DEFAULT_PROTOCOLS), f"default (nginx {self.version})"
        shown = f"nginx {self.version}" if numbers else "nginx version unknown: 1.22's"
        return list(OLD_DEFAULT_PROTOCOLS), f"default ({shown})"

    @classmethod
    def from_version_output(cls, text: str) -> Build:
        def arg(name: str, default: str) -> str:
            match = re.search(rf"--{name}=(\S+)", text)
            return match.group(1) if match else default

        prefix = arg("prefix", DEBIAN_BUILD["prefix"])
        version = re.search(r"nginx version: \S+?/(\S+)", text)
        return cls(prefix, arg("http-proxy-temp-path", posixpath.join(prefix, "proxy_temp")),
                   arg("http-client-body-temp-path", posixpath.join(prefix, "client_body_temp")), "nginx -V",
                   version.group(1) if version else None)


def _server_facts(server: Node, http: Node, registry: dict[str, JSON],
                  named: dict[str, list[str]], build: Build, prefix: str) -> dict[str, JSON]:
    block = server.block or []
    server_ssl = any(n.name == "ssl" and n.args[:1] == ["on"] for n in block)
    listens = [parse_listen_directive(n.args, server_ssl) for n in server.children("listen")]
    if not listens:
        listens = [parse_listen_directive(["80"], server_ssl)]
    names = [a for n in server.children("server_name") for a in n.args]
    facts: dict[str, JSON] = {"where": server.where(), "server_names": names, "listen": listens}
    chains = {uri: select_location(block, uri) for uri in SAMPLE_URIS}
    chain = chains[SAMPLE_URIS[-1]]
    levels: list[tuple[str, Sequence[Node]]] = [("http", http.block or []), ("server", block)]
    levels += [("location", loc.block or []) for loc in chain]
    proxy = _last(chain[-1].block or [], "proxy_pass") if chain else None  # not inherited
    url = proxy.args[0] if proxy is not None and proxy.args else None
    targets, how = proxy_targets(url, named) if url else ([], "no proxy_pass")
    facts["location"] = ({"match": " ".join(chain[-1].args), "where": chain[-1].where()} if chain else None)
    facts["proxy_pass"] = {"url": url, "targets": targets, "resolved_by": how,
                           "to_registry": any(address_is_registry(t, registry) for t in targets)}
    values = {name: effective(levels, name) for name in REPORTED}
    for name in PATH_DIRECTIVES:
        compiled = build.proxy_temp_path if name == "proxy_temp_path" else build.client_body_temp_path
        entry = values[name]
        entry["path"] = absolute_path(entry["args"], prefix) if entry["args"] else compiled
        if not entry["args"]:
            entry["level"] = f"default ({build.source})"
    facts["directives"] = values
    facts["proxy_set_header"] = effective_headers(levels)
    facts["ssl_certificate"] = [n.args[0] for lvl in levels[:2] for n in lvl[1] if n.name == "ssl_certificate"]
    facts["ssl_certificate_key"] = [n.args[0] for lvl in levels[:2] for n in lvl[1]
                                    if n.name == "ssl_certificate_key"]
    facts["plaintext_public_listeners"] = [lst["raw"] for lst in listens if not lst["ssl"] and not lst["loopback"]]
    facts["tls"] = _tls_facts(levels[:2], listens, build)
    facts["auth_by_uri"] = [_auth_facts(block, http, uri, registry, named) for uri in AUTH_URIS]
    facts["add_header"] = effective_add_headers(levels)
    facts["auth_basic_user_files"] = sorted({
        str(entry["auth_basic_user_file"]["path"]) for entry in facts["auth_by_uri"]
        if entry["auth_basic_user_file"].get("path") and _on(entry["auth_basic"])})
    facts["all_sample_uris_same_location"] = len({tuple(id(n) for n in c) for c in chains.values()}) == 1
    return facts


def _on(entry: dict[str, JSON]) -> bool:
    """auth_basic/auth_request are on unless `off` (auth_basic's argument is the realm)."""
    args = entry.get("args")
    return bool(args) and str(args[0]).lower() != "off"  # type: ignore[index]


def _tls_facts(levels: Sequence[tuple[str, Sequence[Node]]], listens: list[dict[str, JSON]],
               build: Build) -> dict[str, JSON]:
    """The TLS a server negotiates: ssl listeners, effective ssl_protocols (nginx's default for this
    version when unset), ssl_ciphers, ssl_conf_command overrides, certificates."""
    protocols = effective(levels, "ssl_protocols")
    if protocols["level"] == "default":
        protocols["args"], protocols["level"] = build.default_protocols()
    commands = [{"args": n.args, "where": n.where()} for _, nodes in levels for n in nodes
                if n.name == "ssl_conf_command"]
    return {"ssl_listeners": [lst["raw"] for lst in listens if lst["ssl"]],
            "plaintext_listeners": [lst["raw"] for lst in listens if not lst["ssl"]],
            "ssl_protocols": protocols, "ssl_ciphers": effective(levels, "ssl_ciphers"),
            "ssl_prefer_server_ciphers": effective(levels, "ssl_prefer_server_ciphers"),
            "ssl_conf_command": commands}


def effective_add_headers(levels: Sequence[tuple[str, Sequence[Node]]]) -> dict[str, JSON]:
    """add_header as nginx inherits it: only from the innermost level that has any."""
    for level, nodes in reversed(levels):
        found = [n for n in nodes if n.name == "add_header"]
        if found:
            return {"level": level, "headers": [
                {"name": n.args[0] if n.args else "", "value": n.args[1] if len(n.args) > 1 else "",
                 "always": "always" in n.args[2:], "where": n.where()} for n in found]}
    return {"level": "default", "headers": []}


def effective_access(levels: Sequence[tuple[str, Sequence[Node]]]) -> dict[str, JSON]:
    """allow/deny as nginx inherits them: only from the innermost level that has any."""
    for level, nodes in reversed(levels):
        found = [n for n in nodes if n.name in ACCESS_DIRECTIVES]
        if found:
            return {"level": level, "rules": [{"directive": n.name, "args": n.args, "where": n.where()}
                                              for n in found]}
    return {"level": "default", "rules": []}


def _auth_facts(block: Sequence[Node], http: Node, uri: str, registry: dict[str, JSON],
                named: dict[str, list[str]]) -> dict[str, JSON]:
    """How nginx authenticates a request for `uri` in this server: the location chosen, what
    handles it (proxy_pass to the registry, return, or static files), and the effective
    auth_basic, auth_basic_user_file, auth_request, satisfy and allow/deny rules."""
    chain = select_location(block, uri)
    levels: list[tuple[str, Sequence[Node]]] = [("http", http.block or []), ("server", block)]
    levels += [("location", loc.block or []) for loc in chain]
    inner = chain[-1].block or [] if chain else []
    proxy = _last(inner, "proxy_pass") if chain else None
    url = proxy.args[0] if proxy is not None and proxy.args else None
    targets = proxy_targets(url, named)[0] if url else []
    returned = _last(inner, "return") if chain else None
    if returned is None:
        returned = _last(block, "return")
    entry: dict[str, JSON] = {
        "uri": uri,
        "location": {"match": " ".join(chain[-1].args), "where": chain[-1].where()} if chain else None,
        "proxy_pass": url,
        "to_registry": any(address_is_registry(t, registry) for t in targets),
        "return": {"args": returned.args, "where": returned.where()} if returned is not None else None,
        "access": effective_access(levels),
        "limit_except": [{"methods": n.args, "where": n.where(),
                          "directives": sorted({c.name for c in n.block or []})}
                         for n in inner if n.name == "limit_except"],
    }
    for name in AUTH_DIRECTIVES:
        entry[name] = effective(levels, name)
    user_file = entry["auth_basic_user_file"]
    if user_file.get("args"):
        user_file["path"] = str(user_file["args"][0])
    return entry


def registry_facts(tree: Tree, registry: dict[str, JSON], build: Build, prefix: str | None = None) -> dict[str, JSON]:
    """Facts about the servers that proxy /v2/ to `registry` ({"host", "port"})."""
    prefix = prefix or build.prefix
    http = next((n for n in tree.nodes if n.name == "http"), None)
    if http is None:
        return {"http_block": False, "registry_servers": [], "other_servers": [], "errors": tree.errors}
    named = upstreams(http)
    servers = [_server_facts(s, http, registry, named, build, prefix) for s in http.children("server")]
    serving = [s for s in servers if s["proxy_pass"]["to_registry"]]
    others = [{"where": s["where"], "server_names": s["server_names"], "listen": [lst["raw"] for lst in s["listen"]],
               "v2_proxy_pass": s["proxy_pass"]} for s in servers if not s["proxy_pass"]["to_registry"]]
    http_levels: list[tuple[str, Sequence[Node]]] = [("http", http.block or [])]
    temp = {}
    for name in PATH_DIRECTIVES:
        if serving:
            temp[name] = serving[0]["directives"][name]["path"]
        else:
            value = effective(http_levels, name)
            compiled = build.proxy_temp_path if name == "proxy_temp_path" else build.client_body_temp_path
            temp[name] = absolute_path(value["args"], prefix) if value["args"] else compiled
    all_temp = sorted({str(s["directives"][n]["path"]) for s in serving for n in PATH_DIRECTIVES})
    maps = [{"source": n.args[0], "variable": n.args[1], "where": n.where(),
             "entries": [[c.name, *c.args] for c in n.block or []]}
            for n in http.children("map") if len(n.args) >= 2]
    return {
        "http_block": True,
        "upstreams": named,
        "maps": maps,
        "registry_servers": serving,
        "other_servers": others,
        "proxy_temp_path": temp["proxy_temp_path"],
        "client_body_temp_path": temp["client_body_temp_path"],
        "temp_paths": all_temp,
        "plaintext_v2_listeners": [{"server": s["where"], "listen": lst}
                                   for s in serving for lst in s["plaintext_public_listeners"]],
        "errors": tree.errors,
    }
