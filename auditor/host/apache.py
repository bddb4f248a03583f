"""Apache httpd 2.4 configuration as Apache reads it, and the vhost that serves the registry.

Contract: `load(path, server_root, defines, env)` reads the main file and its Include /
IncludeOptional files (globs and directories, relative to ServerRoot), joins continued lines,
drops comments, splits quoted arguments, evaluates <IfModule> (against the LoadModule lines read
so far plus the statically compiled modules), <IfDefine> (-D defines and Define), <IfFile>,
expands ${VAR} (Define, then the APACHE_* environment), and returns a :class:`Config` of nested
:class:`Node`s. `registry_facts(config, host, port)` selects the <VirtualHost> that serves `host`
on `port` (ServerName/ServerAlias, else the first vhost on that port, as Apache does) and reports
the effective TLS, proxy and access-control settings for /v2/, each with where it was set.

No existing Python library does this: apacheconfig (PyPI, 0.3.2, 2020; ply and six) implements
Perl Config::General semantics (include globs, yes) but evaluates neither <IfModule> nor <IfDefine>
nor Define variables, and knows nothing of vhost selection or Location merging.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import ipaddress
import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from auditor.model import JSON

# Compiled into Debian's apache2 (apache2 -l).
STATIC_MODULES = ("core", "so", "watchdog", "http", "log_config", "logio", "version", "unixd")
DEFAULT_LIMIT_REQUEST_BODY = 1073741824  # 1 GiB since httpd 2.4.54 (was 0 = unlimited)
DEFAULT_TIMEOUT = 60
DEFAULT_SSL_PROTOCOL = "all -SSLv3"
SAMPLE_URIS = ("/v2/", "/v2/_catalog", "/v2/myapp/backend/blobs/uploads/")
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")
CONDITIONALS = ("ifmodule", "ifdefine", "iffile", "ifversion", "ifdirective", "ifsection")
_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass
class Node:
    """A directive (block None) or a section (<Name args> ... </Name>) where it is written."""

    name: str
    args: list[str]
    file: str
    line: int
    block: list[Node] | None = None

    @property
    def key(self) -> str:
        return self.name.lower()

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Config:
    """The evaluated configuration: top-level nodes, files read, modules, defines, notes."""

    nodes: list[Node]
    files: list[str] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)
    defines: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ParseError(ValueError):
    """A file Apache would refuse (unbalanced section, bad quoting)."""


# ---- lexing ----------------------------------------------------------------------------------------


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined; comments and blanks dropped."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        joined = " ".join(part.strip() for part in buffer).strip()
        buffer = []
        if joined and not joined.startswith("#"):
            yield start, joined
    if buffer:
        joined = " ".join(part.strip() for part in buffer).strip()
        if joined and not joined.startswith("#"):
            yield start, joined


def split_args(text: str) -> list[str]:
    """Apache's argument splitting: whitespace, "double" and 'single' quotes, backslash escapes."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if text[i] in "\"'":
            quote, i = text[i], i + 1
            out = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                raise ParseError(f"unterminated {quote} quote")
            i += 1
            args.append("".join(out))
        else:
            start = i
            while i < n and not text[i].isspace():
                i += 1
            args.append(text[start:i])
    return args


def parse_text(text: str, file: str) -> list[Node]:
    """One file's nodes (includes and conditionals not yet evaluated)."""
    root: list[Node] = []
    stack: list[Node] = []
    for number, line in logical_lines(text):
        target = stack[-1].block if stack else root
        assert target is not None
        if line.startswith("</"):
            name = line[2:].rstrip(">").strip()
            if not stack or stack[-1].key != name.lower():
                opened = stack[-1].name if stack else "nothing"
                raise ParseError(f"{file}:{number}: </{name}> closes {opened}")
            stack.pop()
        elif line.startswith("<"):
            if not line.endswith(">"):
                raise ParseError(f"{file}:{number}: section line does not end with '>'")
            inner = line[1:-1].strip()
            name, _, rest = inner.partition(" ")
            node = Node(name, split_args(rest), file, number, [])
            target.append(node)
            stack.append(node)
        else:
            name, _, rest = line.partition(" ")
            try:
                args = split_args(rest)
            except ParseError as exc:
                raise ParseError(f"{file}:{number}: {exc}") from None
            target.append(Node(name, args, file, number))
    if stack:
        raise ParseError(f"{file}: <{stack[-1].name}> opened at line {stack[-1].line} is never closed")
    return root


# ---- evaluation ------------------------------------------------------------------------------------


class _Loader:
    def __init__(self, server_root: str, defines: Sequence[str], env: dict[str, str]) -> None:
        self.root = server_root
        self.env = dict(env)
        self.variables: dict[str, str] = {}
        self.config = Config([], defines=set(defines))
        for name in STATIC_MODULES:
            self._add_module(f"{name}_module", f"mod_{name}.c")
        self.config.modules.add("core.c")
        self.config.modules.add("http_core.c")

    def _add_module(self, ident: str, source: str) -> None:
        self.config.modules.update((ident, source))

    def expand(self, text: str) -> str:
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.variables:
                return self.variables[name]
            if name in self.env:
                return self.env[name]
            self.config.errors.append(f"variable ${{{name}}} is not defined")
            return match.group(0)

        return _VAR.sub(repl, text)

    def resolve(self, path: str) -> str:
        return path if path.startswith("/") else posixpath.normpath(posixpath.join(self.root, path))

    def load_file(self, path: str, depth: int) -> list[Node]:
        if depth > 32:
            self.config.errors.append(f"{path}: include nesting deeper than 32")
            return []
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(4 * 1024 * 1024)
        except OSError as exc:
            self.config.errors.append(f"{path}: cannot read: {exc.strerror}")
            return []
        if path not in self.config.files:
            self.config.files.append(path)
        try:
            nodes = parse_text(text, path)
        except ParseError as exc:
            self.config.errors.append(str(exc))
            return []
        return self.evaluate(nodes, depth)

    def include(self, node: Node, depth: int) -> list[Node]:
        optional = node.key == "includeoptional"
        pattern = self.resolve(node.args[0]) if node.args else ""
        paths: list[str] = []
        if "\0" in pattern:
            self.config.errors.append(f"{node.where()}: Include {pattern!r}: a path cannot hold a NUL byte")
            return []
        if any(c in pattern for c in "*?["):
            paths = sorted(globmod.glob(pattern))
        elif os.path.exists(pattern):
            paths = [pattern]
        if not paths and not optional and not any(c in pattern for c in "*?["):
            self.config.errors.append(f"{node.where()}: Include {pattern}: no such file or directory")
        out: list[Node] = []
        for path in paths:
            if os.path.isdir(path):
                for base, dirs, files in sorted(os.walk(path)):
                    dirs.sort()
                    for name in sorted(files):
                        out.extend(self.load_file(os.path.join(base, name), depth + 1))
            elif os.path.isfile(path):
                out.extend(self.load_file(path, depth + 1))
        return out

    def condition(self, node: Node) -> bool:
        arg = node.args[0] if node.args else ""
        negate = arg.startswith("!")
        name = arg[1:] if negate else arg
        if node.key == "ifmodule":
            value = name in self.config.modules
        elif node.key == "ifdefine":
            value = name in self.config.defines
        elif node.key == "iffile":
            value = os.path.exists(self.resolve(name))
        else:  # IfVersion, IfDirective, IfSection: this is httpd 2.4 with the usual modules
            value, negate = True, False
        return value != negate

    def evaluate(self, nodes: list[Node], depth: int) -> list[Node]:
        out: list[Node] = []
        for node in nodes:
            node.args = [self.expand(a) for a in node.args]
            key = node.key
            if key in ("include", "includeoptional"):
                out.extend(self.include(node, depth))
            elif key in CONDITIONALS:
                if self.condition(node):
                    out.extend(self.evaluate(node.block or [], depth))
                else:
                    self.config.skipped.append(f"{node.where()}: <{node.name} {' '.join(node.args)}> is false")
            elif key == "loadmodule" and len(node.args) >= 2:
                base = posixpath.basename(node.args[1])
                self._add_module(node.args[0], base.rsplit(".", 1)[0] + ".c")
                out.append(node)
            elif key == "define" and node.args:
                self.config.defines.add(node.args[0])
                if len(node.args) > 1:
                    self.variables[node.args[0]] = node.args[1]
                out.append(node)
            elif key == "undefine" and node.args:
                self.config.defines.discard(node.args[0])
                self.variables.pop(node.args[0], None)
            elif key == "serverroot" and node.args:
                self.root = node.args[0]
                out.append(node)
            else:
                if node.block is not None:
                    node.block = self.evaluate(node.block, depth)
                out.append(node)
        return out


def load(path: str, server_root: str, defines: Sequence[str] = (), env: dict[str, str] | None = None) -> Config:
    """Read and evaluate the configuration rooted at `path` (see the module docstring)."""
    loader = _Loader(server_root, defines, env or {})
    loader.config.nodes = loader.load_file(path, 0)
    return loader.config


def load_text(text: str, file: str, server_root: str, defines: Sequence[str] = ()) -> Config:
    """Evaluate configuration text (tests and inline use); includes still resolve on disk."""
    loader = _Loader(server_root, defines, {})
    loader.config.nodes = loader.evaluate(parse_text(text, file), 0)
    return loader.config


# ---- vhost selection -------------------------------------------------------------------------------


def _addresses(node: Node) -> list[tuple[str, str]]:
    out = []
    for arg in node.args:
        if arg.startswith("["):
            host, _, rest = arg[1:].partition("]")
            out.append((host, rest[1:] if rest.startswith(":") else "*"))
        elif ":" in arg and arg.count(":") == 1:
            host, _, port = arg.partition(":")
            out.append((host, port))
        else:
            out.append((arg, "*"))
    return out


def _names(node: Node) -> tuple[str | None, list[str]]:
    name = None
    aliases: list[str] = []
    for child in node.block or []:
        if child.key == "servername" and child.args:
            raw = child.args[0]
            name = (_hostname(raw) or None if "://" in raw else raw.rsplit(":", 1)[0] if raw.count(":") == 1
                    else raw)
        elif child.key == "serveralias":
            aliases.extend(child.args)
    return name, aliases


def select_vhost(config: Config, host: str | None, port: int) -> tuple[Node | None, str, list[dict[str, JSON]]]:
    """(the vhost Apache picks for `host` on `port`, why, a summary of every vhost)."""
    vhosts = [n for n in config.nodes if n.key == "virtualhost"]
    summary = []
    candidates = []
    for node in vhosts:
        name, aliases = _names(node)
        ports = [p for _, p in _addresses(node)]
        on_port = any(p in ("*", str(port)) for p in ports)
        summary.append({"where": node.where(), "addresses": node.args, "server_name": name,
                        "server_aliases": aliases, f"on_port_{port}": on_port})
        if on_port:
            candidates.append((node, name, aliases))
    if not candidates:
        return None, f"no <VirtualHost> listens on port {port}", summary
    if host:
        for node, name, aliases in candidates:
            if name and name.lower() == host.lower():
                return node, f"ServerName {name} matches {host}", summary
            for alias in aliases:
                if fnmatch.fnmatchcase(host.lower(), alias.lower()):
                    return node, f"ServerAlias {alias} matches {host}", summary
        return candidates[0][0], f"no ServerName/ServerAlias matches {host}: the first vhost on port {port} " \
            "is Apache's default for it", summary
    return candidates[0][0], f"target host unknown: the first vhost on port {port} (Apache's default)", summary


# ---- effective values ------------------------------------------------------------------------------


def _value(levels: Sequence[tuple[str, Sequence[Node]]], name: str, default: str | None) -> dict[str, JSON]:
    """The last `name` at the innermost level that sets it (vhost over global), else the default."""
    for level, nodes in reversed(levels):
        found = [n for n in nodes if n.key == name.lower()]
        if found:
            return {"value": " ".join(found[-1].args), "args": found[-1].args, "level": level,
                    "where": found[-1].where()}
    return {"value": default, "args": default.split() if default else None, "level": "default", "where": None}


def _all(levels: Sequence[tuple[str, Sequence[Node]]], name: str) -> list[dict[str, JSON]]:
    return [{"args": n.args, "level": level, "where": n.where()} for level, nodes in levels
            for n in nodes if n.key == name.lower()]


def location_matches(node: Node, uri: str) -> bool:
    """Whether <Location>/<LocationMatch> `node` applies to `uri` (Apache's matching rules)."""
    if not node.args:
        return False
    regex = node.key == "locationmatch" or (node.args[0] == "~" and len(node.args) > 1)
    pattern = node.args[-1]
    if regex:
        try:
            return re.search(pattern, uri) is not None
        except re.error:
            return False
    if any(c in pattern for c in "*?["):
        parts = pattern.rstrip("/").split("/")
        return fnmatch.fnmatchcase("/".join(uri.split("/")[: len(parts)]), "/".join(parts))
    if pattern == "/":
        return True
    if not uri.startswith(pattern):
        return False
    return pattern.endswith("/") or len(uri) == len(pattern) or uri[len(pattern)] == "/"


def _sections(scopes: Sequence[tuple[str, Sequence[Node]]], uri: str) -> list[tuple[str, Node]]:
    return [(level, n) for level, nodes in scopes for n in nodes
            if n.key in ("location", "locationmatch") and location_matches(n, uri)]


def _requires(nodes: Sequence[Node], container: str | None = None) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    for n in nodes:
        if n.key == "require":
            out.append({"args": n.args, "container": container, "where": n.where()})
        elif n.key in ("requireall", "requireany", "requirenone"):
            out.extend(_requires(n.block or [], n.name))
    return out


def proxy_section_matches(node: Node, url: str) -> bool:
    """Whether <Proxy>/<ProxyMatch> `node` applies to the proxied `url` (wildcards match any run)."""
    if not node.args:
        return False
    pattern = node.args[-1]
    if node.key == "proxymatch" or (node.args[0] == "~" and len(node.args) > 1):
        try:
            return re.search(pattern, url) is not None
        except re.error:
            return False
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(url, pattern)
    return url.startswith(pattern)


def proxied_url(rule: dict[str, JSON] | None, uri: str) -> str | None:
    """The backend URL a ProxyPass rule maps `uri` to (None when not proxied)."""
    if not rule or rule.get("url") == "!":
        return None
    path, url = str(rule["path"]), str(rule["url"])
    rest = uri[len(path):] if uri.startswith(path) else uri.lstrip("/")
    return url + rest if url.endswith("/") or not rest else f"{url}/{rest.lstrip('/')}"


def access_for(scopes: Sequence[tuple[str, Sequence[Node]]], uri: str, proxied: str | None = None) -> dict[str, JSON]:
    """AuthType/AuthName/AuthUserFile/Require/LimitRequestBody in effect for `uri` (merged as Apache
    merges per-directory config: the vhost's own directives, then the <Proxy> sections matching the
    backend URL `proxied`, then matching Location sections, in order; authorization comes from the
    last section that has any Require, AuthMerging Off)."""
    layers: list[tuple[str, str, Sequence[Node]]] = [(lvl, f"{lvl} level", nodes) for lvl, nodes in scopes]
    matched: list[tuple[str, Node]] = []
    if proxied:
        matched += [(lvl, n) for lvl, nodes in scopes for n in nodes
                    if n.key in ("proxy", "proxymatch") and proxy_section_matches(n, proxied)]
    matched += _sections(scopes, uri)
    layers += [(lvl, f"<{n.name} {' '.join(n.args)}> {n.where()}", n.block or []) for lvl, n in matched]
    facts: dict[str, JSON] = {"uri": uri, "sections": [f"<{n.name} {' '.join(n.args)}> at {n.where()}"
                                                      for _, n in matched]}
    for name, key in (("AuthType", "auth_type"), ("AuthName", "auth_name"), ("AuthUserFile", "auth_user_file"),
                      ("AuthBasicProvider", "auth_basic_provider"), ("LimitRequestBody", "limit_request_body")):
        value: dict[str, JSON] = {"value": None, "where": None}
        for _, _, nodes in layers:
            found = [n for n in nodes if n.key == name.lower()]
            if found:
                value = {"value": " ".join(found[-1].args), "where": found[-1].where()}
        facts[key] = value
    requires: dict[str, JSON] | None = None
    for _, label, nodes in layers:
        rules = _requires(nodes)
        if rules:
            requires = {"from": label, "rules": rules}
    facts["require"] = requires
    return facts


def _proxy_rules(scopes: Sequence[tuple[str, Sequence[Node]]]) -> list[dict[str, JSON]]:
    rules: list[dict[str, JSON]] = []
    for level, nodes in scopes:
        for n in nodes:
            if n.key == "proxypass" and len(n.args) >= 2:
                rules.append({"path": n.args[0], "url": n.args[1], "flags": n.args[2:], "where": n.where(),
                              "level": level, "in_location": None})
            elif n.key in ("location", "locationmatch"):
                for child in n.block or []:
                    if child.key == "proxypass" and child.args:
                        rules.append({"path": n.args[-1], "url": child.args[0], "flags": child.args[1:],
                                      "where": child.where(), "level": level,
                                      "in_location": f"<{n.name} {' '.join(n.args)}>"})
    return rules


def _rule_applies(rule: dict[str, JSON], uri: str) -> bool:
    path = str(rule["path"])
    if rule["in_location"] and (str(rule["in_location"]).lower().startswith("<locationmatch")
                                or " ~ " in str(rule["in_location"])):
        try:
            return re.search(path, uri) is not None
        except re.error:
            return False
    return uri.startswith(path)


def proxy_for(rules: Sequence[dict[str, JSON]], uri: str) -> dict[str, JSON] | None:
    """The ProxyPass rule mod_proxy uses for `uri`: Location ones first, then in order."""
    ordered = [r for r in rules if r["in_location"]] + [r for r in rules if not r["in_location"]]
    for rule in ordered:
        if _rule_applies(rule, uri):
            return rule
    return None


def _hostname(url: str) -> str:
    """The URL's host, "" when the URL does not parse (an unbalanced [ in a config value)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_loopback_url(url: str) -> bool:
    host = _hostname(url)
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _request_headers(scopes: Sequence[tuple[str, Sequence[Node]]], uri: str,
                     key: str = "requestheader") -> list[dict[str, JSON]]:
    """RequestHeader (or, with key="header", the response Header) directives in effect for `uri`."""
    nodes: list[tuple[str, Node]] = [(lvl, n) for lvl, ns in scopes for n in ns if n.key == key]
    for lvl, section in _sections(scopes, uri):
        nodes += [(f"{lvl} <{section.name} {' '.join(section.args)}>", n) for n in section.block or []
                  if n.key == key]
    out = []
    for level, n in nodes:
        args = list(n.args)
        if len(args) >= 3 and args[1].lower() in SECRET_HEADERS:
            args[2:] = ["<redacted>"]
        out.append({"args": args, "level": level, "where": n.where()})
    return out


def registry_facts(config: Config, host: str | None, port: int) -> dict[str, JSON]:
    """Facts about the vhost serving `host` on `port`: TLS, ProxyPass for /v2/, access to /v2/."""
    top = [n for n in config.nodes if n.block is None or n.key in ("location", "locationmatch", "proxy", "proxymatch")]
    vhost, why, summary = select_vhost(config, host, port)
    base: dict[str, JSON] = {
        "modules": sorted(m for m in config.modules if m.endswith("_module")),
        "defines": sorted(config.defines),
        "skipped_sections": config.skipped,
        "errors": config.errors,
        "vhosts": summary,
        "listen": [" ".join(n.args) for n in config.nodes if n.key == "listen"],
        "selection": why,
        "vhost": None,
    }
    if vhost is None:
        listens = [n for n in config.nodes if n.key == "listen" and n.args
                   and n.args[0].rsplit(":", 1)[-1] == str(port)]
        if not listens or any(n.key == "virtualhost" for n in config.nodes):
            return base
        # No <VirtualHost> at all: the main server answers on its Listen ports.
        vhost = Node("VirtualHost", [f"(main server, Listen {' '.join(listens[0].args)})"], listens[0].file,
                     listens[0].line, [])
        base["selection"] = f"no <VirtualHost> in the config: the main server listens on port {port}"
    inner = vhost.block or []
    levels: list[tuple[str, Sequence[Node]]] = [("global", top), ("vhost", inner)]
    name, aliases = _names(vhost)
    suites = [n for _, ns in levels for n in ns if n.key == "sslciphersuite"]
    tls12 = [n for n in suites if not (len(n.args) == 2 and n.args[0].upper() == "TLSV1.3")]
    tls13 = [n for n in suites if len(n.args) == 2 and n.args[0].upper() == "TLSV1.3"]
    cipher: dict[str, JSON] = {"value": None, "level": "default (OpenSSL DEFAULT)", "where": None}
    if tls12:
        last = tls12[-1]
        cipher = {"value": last.args[-1] if last.args else "", "where": last.where(),
                  "level": "vhost" if any(last is n for n in inner) else "global"}
    timeout = _value(levels, "ProxyTimeout", None)
    if timeout["value"] is None:
        fallback = _value(levels, "Timeout", str(DEFAULT_TIMEOUT))
        timeout = {**fallback, "level": f"{fallback['level']} (Timeout: ProxyTimeout is not set)"}
    rules = _proxy_rules(levels)
    reverse = _all(levels, "ProxyPassReverse")
    reverse += [{"args": [n.args[-1], *c.args], "level": lvl, "where": c.where()} for lvl, ns in levels for n in ns
                if n.key in ("location", "locationmatch") for c in n.block or [] if c.key == "proxypassreverse"]
    accesses = [access_for(levels, uri, proxied_url(proxy_for(rules, uri), uri)) for uri in SAMPLE_URIS]
    chosen = proxy_for(rules, SAMPLE_URIS[-1])
    base["vhost"] = {
        "where": vhost.where(),
        "addresses": vhost.args,
        "server_name": name,
        "server_aliases": aliases,
        "ssl_engine": _value(levels, "SSLEngine", "off"),
        "ssl_protocol": _value(levels, "SSLProtocol", DEFAULT_SSL_PROTOCOL),
        "ssl_cipher_suite": cipher,
        "ssl_cipher_suite_tls13": " ".join(tls13[-1].args[1:]) if tls13 else None,
        "ssl_honor_cipher_order": _value(levels, "SSLHonorCipherOrder", "off"),
        "ssl_openssl_conf_cmd": [a["args"] for a in _all(levels, "SSLOpenSSLConfCmd")],
        "ssl_certificate_file": [a["args"][0] for a in _all(levels, "SSLCertificateFile") if a["args"]],
        "ssl_certificate_key_file": [a["args"][0] for a in _all(levels, "SSLCertificateKeyFile") if a["args"]],
        "proxy_timeout": timeout,
        "proxy_pass": rules,
        "v2_proxy_pass": chosen,
        "v2_upstream_loopback": is_loopback_url(str(chosen["url"])) if chosen and chosen["url"] != "!" else None,
        "proxy_pass_reverse": reverse,
        "request_headers": _request_headers(levels, SAMPLE_URIS[0]),
        "response_headers": _request_headers(levels, SAMPLE_URIS[0], "header"),
        "proxy_preserve_host": _value(levels, "ProxyPreserveHost", "off"),
        "proxy_add_headers": _value(levels, "ProxyAddHeaders", "on"),
        "limit_request_body_default": DEFAULT_LIMIT_REQUEST_BODY,
    }
    base["v2_access"] = accesses[0]
    base["v2_access_by_uri"] = accesses
    return base


# ---- apache2ctl output (extra evidence from the running instance) ---------------------------------

_S_WHERE = re.compile(r"\((/[^()]*):(\d+)\)\s*$")
_INCLUDE_LINE = re.compile(r"^\s*\((?:\*|\d+)\)\s+(\S.*)$")


def dump_includes_files(text: str) -> list[str]:
    """The files `apache2ctl -t -D DUMP_INCLUDES` lists, in order."""
    return [m.group(1).strip() for m in map(_INCLUDE_LINE.match, text.splitlines()) if m]


def vhosts_from_s(text: str) -> list[str]:
    """`file:line` of every vhost `apache2ctl -S` lists."""
    return sorted({f"{m.group(1)}:{m.group(2)}" for m in map(_S_WHERE.search, text.splitlines()) if m})


def cross_check(config: Config, selected_where: str | None, dump: str | None, s_output: str | None) -> dict[str, JSON]:
    """Whether Apache itself read the files this parser read, and knows the vhost it selected."""
    out: dict[str, JSON] = {}
    if dump is not None:
        listed = dump_includes_files(dump)
        ours = [os.path.realpath(f) for f in config.files]
        theirs = [os.path.realpath(f) for f in listed]
        out["files_agree"] = sorted(ours) == sorted(theirs)
        out["files_only_apache_read"] = sorted(set(theirs) - set(ours))
        out["files_only_parser_read"] = sorted(set(ours) - set(theirs))
    if s_output is not None and selected_where:
        out["vhost_known_to_apache"] = selected_where in vhosts_from_s(s_output)
    return out
