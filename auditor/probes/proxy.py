"""`config.nginx` and `config.apache`: the proxies' effective configuration, as facts.

Where a config comes from: the explicit --nginx-config / --apache-config, else the running
process `host.discovery` found (inside mode), else the packaged default path when discovery is
unavailable. A proxy that is not deployed is NotApplicable (its checks `skip`, never pass).
nginx's effective config is read from `nginx -T` when the config is the running one (includes as
nginx resolved them), else parsed from disk with crossplane. Apache's is parsed by
auditor.host.apache, with `apache2ctl -S` / `-t -D DUMP_INCLUDES` as extra evidence when the
running instance was discovered. Every subprocess gets an argument list (no shell) and a timeout.

Evidence contract (other probes, checks and generators read these keys):
- config.nginx: path, source, method, running, pid, prefix, files[{path, mode, uid, ...}],
  registry_address{host, port, source, also}, proxy_temp_path and client_body_temp_path (absolute,
  the build's defaults when unset), temp_paths, plaintext_v2_listeners
  (docs/guide-notes.md#inner-nginx-listener), other_servers,
  registry_servers[{where, server_names, listen[{raw, address, port, ssl, loopback}], location{match,
  where}, proxy_pass{url, targets, resolved_by, to_registry}, directives{name: {args, level, where}},
  proxy_set_header{level, headers[{name, value, where}]}, ssl_certificate, ssl_certificate_key}].
- config.apache: path, source, running, pid, server_root, files, modules, defines, vhosts, selection,
  vhost{where, addresses, server_name, ssl_engine, ssl_protocol, ssl_cipher_suite, ssl_certificate_file,
  ssl_certificate_key_file, proxy_timeout, proxy_pass, v2_proxy_pass, v2_upstream_loopback,
  proxy_pass_reverse, request_headers, ...}, v2_access and v2_access_by_uri[{uri, sections, auth_type,
  auth_user_file{value, where}, require, limit_request_body}], auth_user_file (file facts),
  cipher_expansion{string, suites[{name, protocol, ...}]}, apache2ctl{S, dump_includes}, apache2ctl_agrees.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from auditor import subproc
from auditor.errors import NotApplicable, ProbeError
from auditor.host import apache, nginx
from auditor.judge import shapes
from auditor.judge.netaddr import parse_listen
from auditor.model import JSON
from auditor.probeapi import ProbeContext, probe
from auditor.probes.registry_config import file_facts, read_registry_config

NGINX_DEFAULT = "/etc/nginx/nginx.conf"
APACHE_DEFAULT = "/etc/apache2/apache2.conf"
APACHE_DEFAULT_ROOT = "/etc/apache2"
DEFAULT_REGISTRY = {"host": "127.0.0.1", "port": 5000, "source": "default (127.0.0.1:5000)"}
COMMAND_TIMEOUT = 20.0
MAX_OUTPUT = 8 * 1024 * 1024


async def run_command(argv: list[str], env: dict[str, str] | None = None,
                      timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of argv; ProbeError when it cannot start or times out."""
    ran = await subproc.run_async(argv, env=env, timeout=timeout, max_stdout=MAX_OUTPUT, max_stderr=MAX_OUTPUT)
    if ran.problem == "timeout":
        raise ProbeError(f"{argv[0]} did not finish within {timeout:g}s")
    if ran.problem:
        raise ProbeError(f"cannot run {ran.reason}")
    return ran.returncode, ran.stdout, ran.stderr


async def discovered(ctx: ProbeContext, kind: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the discovered `kind` process facts or None, why discovery could not tell or None)."""
    if not ctx.target.inside:
        return None, "not in inside mode"
    try:
        found = await ctx.evidence("host.discovery")
    except Exception as exc:  # discovery is optional: an explicit path or the default still works
        return None, f"host.discovery unavailable: {exc}"
    if not isinstance(found, dict):
        return None, "host.discovery returned no facts"
    entry = found.get(kind)
    if isinstance(entry, list):
        entry = entry[0] if entry else None
    return (entry if isinstance(entry, dict) else None), None


async def registry_address(ctx: ProbeContext) -> dict[str, JSON]:
    """Where the registry listens: http.addr of `config.registry`, else 127.0.0.1:5000."""
    port_override = ctx.target.options.get("registry_port")
    try:
        facts = await ctx.evidence("config.registry")
    except Exception:
        facts = None
    addr = None
    if isinstance(facts, dict) and isinstance(facts.get("config"), dict):
        http = facts["config"].get("http")
        addr = http.get("addr") if isinstance(http, dict) else None
    listen = parse_listen(str(addr)) if addr else None
    if listen is None or listen.port is None:
        out = dict(DEFAULT_REGISTRY)
    else:
        out = {"host": listen.host.strip("[]"), "port": listen.port, "source": f"config.registry http.addr {addr}"}
    if port_override:
        out["port"] = int(port_override)
        out["source"] = f"{out['source']}; port from --registry-port"
    else:
        out["also"] = await _other_registries(ctx, facts.get("path") if isinstance(facts, dict) else None)
    return out


async def _other_registries(ctx: ProbeContext, audited: str | None) -> list[dict[str, JSON]]:
    """Listen addresses of the other registry processes discovery found (a host may run several)."""
    try:
        everything = await ctx.evidence("host.discovery") if ctx.target.inside else None
    except Exception:
        everything = None
    entries = everything.get("registries") if isinstance(everything, dict) else None
    out: list[dict[str, JSON]] = []
    for entry in entries if isinstance(entries, list) else []:
        config = entry.get("config") if isinstance(entry, dict) else None
        if not config or config == audited or not os.path.isfile(str(config)):
            continue
        try:
            facts = read_registry_config(str(config), "discovered")
        except ProbeError:
            continue
        http = (facts.get("config") or {}).get("http") if isinstance(facts.get("config"), dict) else None
        listen = parse_listen(str(http.get("addr"))) if isinstance(http, dict) and http.get("addr") else None
        if listen is not None and listen.port is not None:
            out.append({"host": listen.host.strip("[]"), "port": listen.port, "config": config})
    return out


def _config_choice(explicit: str | None, found: dict[str, Any] | None, why: str | None, default: str,
                   kind: str) -> tuple[str, str]:
    label = {"apache": "Apache"}.get(kind, kind)
    if explicit:
        return explicit, f"--{kind}-config"
    if found and found.get("config"):
        return str(found["config"]), str(found.get("config_source") or f"discovered {kind} pid {found.get('pid')}")
    if why is None:
        raise NotApplicable(f"no {label} found: no running {label} process was discovered on this host "
                            f"(give --{kind}-config to audit a config file)")
    if os.path.isfile(default):
        return default, f"default path ({why})"
    raise NotApplicable(f"no {label} found: none given with --{kind}-config, none discovered ({why}), "
                        f"no {default}")


def _is_running_config(found: dict[str, Any] | None, path: str) -> bool:
    """Whether `path` is the config the discovered process runs (discovery may have replaced its
    `config` with an explicit path, keeping the running one as `discovered_config`)."""
    if not found or not found.get("pid"):
        return False
    running = found.get("discovered_config") or found.get("config")
    return bool(running) and os.path.realpath(str(running)) == os.path.realpath(path)


# ---- nginx ---------------------------------------------------------------------------------------


async def _nginx_build(binary: str | None) -> nginx.Build:
    if not binary:
        return nginx.Build()
    try:
        code, out, err = await run_command([binary, "-V"])
    except ProbeError:
        return nginx.Build()
    return nginx.Build.from_version_output(out + err) if code == 0 else nginx.Build()


@probe("config.nginx", shape=shapes.ConfigNginx, timeout=60.0)
async def config_nginx(ctx: ProbeContext) -> JSON:
    """nginx's effective config: the servers proxying /v2/ to the registry, temp paths, listeners."""
    found, why = await discovered(ctx, "nginx")
    path, source = _config_choice(ctx.target.path("nginx_config"), found, why, NGINX_DEFAULT, "nginx")
    if not os.path.isfile(path):
        raise ProbeError(f"nginx config {path} ({source}) is not a readable file")
    running = _is_running_config(found, path)
    binary = shutil.which("nginx")
    build = await _nginx_build(binary)
    prefix = str(found.get("prefix")) if running and found and found.get("prefix") else build.prefix
    method, dump_error = "crossplane (file)", None
    tree: nginx.Tree | None = None
    if running and binary:
        argv = [binary, "-T", "-q", "-c", path]
        if found and found.get("prefix"):
            argv[2:2] = ["-p", str(found["prefix"])]
        code, out, err = await run_command(argv)
        dumped = nginx.load_from_dump(out, path) if code == 0 and out.strip() else None
        if dumped is not None and dumped.nodes:
            tree, method = dumped, "nginx -T (effective config of the running nginx)"
        elif dumped is not None:
            dump_error = "; ".join(dumped.errors) or "the dump holds no directive"
        else:
            dump_error = (err.strip() or f"exit code {code}")[-2000:]
    if tree is None:
        tree = nginx.load_from_disk(path)
    registry = await registry_address(ctx)
    facts = nginx.registry_facts(tree, registry, build, prefix)
    await _nginx_tls_and_auth(facts, os.path.dirname(path))
    return {
        "path": path,
        "source": source,
        "method": method,
        "nginx_t_error": dump_error,
        "running": running,
        "pid": found.get("pid") if found else None,
        "prefix": prefix,
        "build": {"source": build.source, "version": build.version, "proxy_temp_path": build.proxy_temp_path,
                  "client_body_temp_path": build.client_body_temp_path},
        "registry_address": registry,
        "files": [file_facts(f) for f in tree.files],
        **facts,
    }


async def _nginx_tls_and_auth(facts: dict[str, Any], conf_prefix: str) -> None:
    """Add to each registry server the expansion of its ssl_ciphers (servers with an ssl listener)
    and the facts of its password files (relative paths are from the config's directory, as nginx
    resolves them); `auth_user_files` lists those facts for the whole config."""
    expansions: dict[str, JSON] = {}
    files: dict[str, JSON] = {}
    for server in facts.get("registry_servers") or []:
        tls = server.get("tls") or {}
        if tls.get("ssl_listeners"):
            text = " ".join(tls["ssl_ciphers"].get("args") or [])
            if text not in expansions:
                expansions[text] = await _cipher_expansion(text)
            tls["cipher_expansion"] = expansions[text]
        resolved = []
        for entry in server.get("auth_by_uri") or []:
            user_file = entry.get("auth_basic_user_file") or {}
            if user_file.get("path"):
                user_file["path"] = os.path.normpath(os.path.join(conf_prefix, str(user_file["path"])))
        for raw in server.get("auth_basic_user_files") or []:
            path = os.path.normpath(os.path.join(conf_prefix, str(raw)))
            resolved.append(path)
            if path not in files:
                files[path] = {**file_facts(path), "named_by": f"auth_basic_user_file ({server.get('where')})"}
        server["auth_basic_user_files"] = resolved
    facts["auth_user_files"] = list(files.values())


# ---- Apache --------------------------------------------------------------------------------------


async def _cipher_expansion(cipher_string: str | None) -> dict[str, JSON]:
    """`openssl ciphers -s -v <string>`: the suites the cipher string enables (facts for the check)."""
    text = cipher_string if cipher_string is not None else "DEFAULT"
    binary = shutil.which("openssl")
    if not binary:
        return {"string": text, "error": "openssl is not installed"}
    code, out, err = await run_command([binary, "ciphers", "-s", "-v", text])
    if code != 0:
        return {"string": text, "error": (err.strip() or f"exit code {code}")[-500:]}
    suites = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            suites.append({"name": parts[0], "protocol": parts[1],
                           **{k.lower(): v for k, _, v in (p.partition("=") for p in parts[2:]) if v}})
    return {"string": text, "suites": suites, "tool": "openssl ciphers -s -v"}


async def _apache2ctl(found: dict[str, Any], path: str, root: str) -> dict[str, JSON]:
    binary = shutil.which("apache2ctl") or shutil.which("apachectl")
    if not binary:
        return {"error": "apache2ctl is not installed"}
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
    for key, value in (found.get("env") or {}).items():
        if isinstance(value, str) and key.startswith("APACHE_") and "<" not in value:
            env[key] = value
    defines = [a for d in found.get("defines") or [] for a in ("-D", str(d))]
    out: dict[str, JSON] = {}
    for label, extra in (("S", ["-S"]), ("dump_includes", ["-t", "-D", "DUMP_INCLUDES"])):
        argv = [binary, "-d", root, "-f", path, *defines, *extra]
        try:
            code, stdout, stderr = await run_command(argv, env=env)
        except ProbeError as exc:
            out[label] = {"error": str(exc)}
            continue
        out[label] = {"exit_code": code, "output": (stdout + stderr)[-20000:]}
    return out


@probe("config.apache", shape=shapes.ConfigApache, timeout=60.0)
async def config_apache(ctx: ProbeContext) -> JSON:
    """Apache's effective config for the vhost serving the registry on 443: TLS, proxy, auth."""
    found, why = await discovered(ctx, "apache")
    path, source = _config_choice(ctx.target.path("apache_config"), found, why, APACHE_DEFAULT, "apache")
    if not os.path.isfile(path):
        raise ProbeError(f"Apache config {path} ({source}) is not a readable file")
    running = _is_running_config(found, path)
    root = str(found.get("server_root")) if found and found.get("server_root") else (
        APACHE_DEFAULT_ROOT if path == APACHE_DEFAULT else os.path.dirname(path))
    env_vars = {k: str(v) for k, v in ((found or {}).get("env") or {}).items() if isinstance(v, str)}
    defines = [str(d) for d in (found or {}).get("defines") or []]
    config = apache.load(path, server_root=root, defines=defines, env=env_vars)
    host = ctx.target.host
    if not host:
        try:
            reg = await ctx.evidence("config.registry")
            http = (reg.get("config") or {}).get("http") or {}
            from urllib.parse import urlsplit

            host = urlsplit(str(http.get("host") or "")).hostname
        except Exception:
            host = None
    port = (ctx.target.port or 443) if ctx.target.url and ctx.target.scheme == "https" else 443
    registry = await registry_address(ctx)
    facts = apache.registry_facts(config, host, port)
    vhost = facts.get("vhost") or {}
    cipher = await _cipher_expansion(vhost.get("ssl_cipher_suite", {}).get("value")) if vhost else None
    user_file = ((facts.get("v2_access") or {}).get("auth_user_file") or {}).get("value") if vhost else None
    if user_file and not str(user_file).startswith("/"):
        user_file = os.path.join(root, str(user_file))
    ctl = await _apache2ctl(found, path, root) if running and found else None
    return {
        "path": path,
        "source": source,
        "running": running,
        "pid": found.get("pid") if found else None,
        "server_root": root,
        "registry_address": registry,
        "target_host": host,
        "target_port": port,
        "files": [file_facts(f) for f in config.files],
        "cipher_expansion": cipher,
        "auth_user_file": file_facts(user_file) if user_file else None,
        "apache2ctl": ctl,
        "apache2ctl_agrees": apache.cross_check(config, vhost.get("where") if vhost else None, *_ctl_texts(ctl)),
        **facts,
    }


def _ctl_texts(ctl: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(DUMP_INCLUDES output, -S output) when apache2ctl ran successfully."""
    def text(key: str) -> str | None:
        entry = (ctl or {}).get(key) or {}
        return str(entry["output"]) if entry.get("exit_code") == 0 and "output" in entry else None

    return text("dump_includes"), text("S")
