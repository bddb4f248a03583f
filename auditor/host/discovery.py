"""Finding the running deployment in /proc: the registry, nginx's master, Apache's parent.

Contract: `discover_processes(proc)` looks only at processes in the auditor's own network
namespace (several deployments may share the machine, one per namespace) and returns JSON facts:
{"registries": [...], "nginx": [...], "apache": [...]}, each entry naming pid, exe, cmdline,
the config file it runs with and where that came from (`config_source`). Pure parsing of the
command lines lives in the `parse_*` functions.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Sequence

from auditor.host import procfs
from auditor.host.procfs import Process
from auditor.model import JSON

REGISTRY_NAMES = ("registry", "docker-registry")
NGINX_DEFAULT_CONFIG = "/etc/nginx/nginx.conf"
NGINX_DEFAULT_PREFIX = "/usr/share/nginx"
APACHE_DEFAULTS = {"apache2": ("/etc/apache2", "apache2.conf"), "httpd": ("/etc/httpd", "conf/httpd.conf")}
NGINX_MASTER = "nginx: master process"
_FLAG = re.compile(r"^-[a-zA-Z?]$")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$")


def _base(arg: str) -> str:
    return posixpath.basename(arg)


def _absolute(path: str, base: str | None) -> str:
    if posixpath.isabs(path) or not base:
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(base, path))


def is_registry(process: Process) -> bool:
    """`registry serve ...` or Debian's `docker-registry serve ...` (by argv[0] or the executable)."""
    if not process.argv or "serve" not in process.argv[1:3]:
        return False
    names = {_base(process.argv[0]), _base(process.exe or "")}
    return bool(names & set(REGISTRY_NAMES))


def parse_registry(process: Process, cwd: str | None, env: dict[str, str]) -> dict[str, JSON]:
    """Facts of a registry process; its config: the argument after `serve`, else
    REGISTRY_CONFIGURATION_PATH, else none (the registry then refuses to start)."""
    argv = list(process.argv)
    after = argv[argv.index("serve") + 1 :]
    positional = [a for a in after if not a.startswith("-")]
    facts: dict[str, JSON] = _identity(process)
    if positional:
        facts["config"] = _absolute(positional[0], cwd)
        facts["config_source"] = f"command line of pid {process.pid} ({_base(argv[0])} serve <config>)"
    elif env.get("REGISTRY_CONFIGURATION_PATH"):
        facts["config"] = _absolute(env["REGISTRY_CONFIGURATION_PATH"], cwd)
        facts["config_source"] = f"REGISTRY_CONFIGURATION_PATH in the environment of pid {process.pid}"
    else:
        facts["config"] = None
        facts["config_source"] = f"pid {process.pid} names no config file"
    facts["env_overrides"] = {k: v for k, v in sorted(env.items()) if k.startswith("REGISTRY_")}
    return facts


def nginx_argv(process: Process) -> list[str] | None:
    """The arguments of an nginx master (its title is `nginx: master process <argv>`), else None."""
    title = " ".join(process.argv)
    if title.startswith(NGINX_MASTER):
        # the title is argv joined by spaces (quotes lost): re-join -g's directives up to the next flag
        out: list[str] = []
        tokens = title[len(NGINX_MASTER) :].split()
        i = 0
        while i < len(tokens):
            out.append(tokens[i])
            if tokens[i] == "-g":
                j = i + 1
                while j < len(tokens) and not _FLAG.match(tokens[j]):
                    j += 1
                out.append(" ".join(tokens[i + 1 : j]))
                i = j
                continue
            i += 1
        return out
    # nginx with `master_process off` keeps its plain argv
    if _base(process.argv[0]) == "nginx" and not title.startswith("nginx: "):
        return list(process.argv)
    return None


def _option(args: Sequence[str], flag: str) -> str | None:
    """Value of `-x value` or `-xvalue` (the last one wins)."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag) and len(arg) > len(flag) and not arg.startswith("--"):
            value = arg[len(flag) :]
    return value


def parse_nginx(process: Process, args: list[str], cwd: str | None) -> dict[str, JSON]:
    """Facts of an nginx master: -c config (relative to the prefix), -p prefix, -g directives."""
    facts: dict[str, JSON] = _identity(process, args)
    prefix = _option(args[1:], "-p")
    conf = _option(args[1:], "-c")
    if conf:
        base = prefix if prefix else posixpath.dirname(NGINX_DEFAULT_CONFIG)
        facts["config"] = _absolute(conf, _absolute(base, cwd))
        facts["config_source"] = f"command line of nginx master pid {process.pid} (-c)"
    else:
        facts["config"] = NGINX_DEFAULT_CONFIG
        facts["config_source"] = f"nginx default (pid {process.pid} has no -c)"
    facts["prefix"] = _absolute(prefix, cwd) if prefix else NGINX_DEFAULT_PREFIX
    facts["global_directives"] = _option(args[1:], "-g")
    return facts


def is_apache(process: Process) -> bool:
    names = {_base(process.argv[0]) if process.argv else "", _base(process.exe or ""), process.comm}
    return bool(names & set(APACHE_DEFAULTS))


def parse_apache(process: Process, env: dict[str, str], envvars_text: str | None) -> dict[str, JSON]:
    """Facts of Apache's parent: -d server root, -f config (relative to the root), -D defines,
    and the APACHE_* variables the Debian config expands (from the environment, else envvars)."""
    args = list(process.argv[1:])
    flavour = "httpd" if "httpd" in {_base(process.argv[0]), _base(process.exe or ""), process.comm} else "apache2"
    default_root, default_conf = APACHE_DEFAULTS[flavour]
    root = _option(args, "-d") or env.get("APACHE_CONFDIR") or default_root
    conf = _option(args, "-f")
    facts: dict[str, JSON] = _identity(process)
    facts["server_root"] = root
    if conf:
        facts["config"] = _absolute(conf, root)
        facts["config_source"] = f"command line of Apache pid {process.pid} (-f)"
    else:
        facts["config"] = _absolute(default_conf, root)
        facts["config_source"] = f"{flavour} default under server root {root} (pid {process.pid} has no -f)"
    defines = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-D"]
    defines += [a[2:] for a in args if a.startswith("-D") and len(a) > 2]
    facts["defines"] = defines
    variables = {k: v for k, v in env.items() if k.startswith("APACHE_")}
    source = "process environment"
    if not variables and envvars_text:
        variables = parse_envvars(envvars_text, root)
        source = "envvars file"
    facts["env"] = procfs.mask_env(variables)
    facts["env_source"] = source if variables else None
    return facts


def parse_envvars(text: str, confdir: str = "/etc/apache2") -> dict[str, str]:
    """APACHE_* assignments of Debian's envvars (simple `export X=value` lines; `${VAR}` references
    to earlier values are expanded, shell logic is not run). $SUFFIX is what envvars computes for
    a multi-instance conf dir (/etc/apache2-NAME -> "-NAME")."""
    prefix = "/etc/apache2-"
    values: dict[str, str] = {"SUFFIX": "-" + confdir[len(prefix):] if confdir.startswith(prefix) else "",
                              "APACHE_CONFDIR": confdir}
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        if not match or match.group(1) in ("SUFFIX", "APACHE_CONFDIR"):
            continue
        name, raw = match.groups()
        try:
            parts = shlex.split(raw, comments=True)
        except ValueError:
            continue
        value = parts[0] if parts else ""
        value = re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: values.get(m.group(1), ""), value)
        values[name] = value
    return {k: v for k, v in values.items() if k.startswith("APACHE_")}


def _identity(process: Process, argv: Sequence[str] | None = None) -> dict[str, JSON]:
    """pid, exe, netns, `argv` (the arguments as the kernel gives them, secrets masked: reuse this,
    never split `cmdline`) and `cmdline` (the same, shell-quoted for display)."""
    args = procfs.safe_argv(list(argv if argv is not None else process.argv))
    return {"pid": process.pid, "exe": process.exe, "argv": list(args), "cmdline": shlex.join(args),
            "netns": process.netns}


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 16)
    except OSError:
        return None


def discover_processes(proc: str = procfs.PROC) -> dict[str, JSON]:
    """Registry, nginx master and Apache parent processes in the auditor's network namespace."""
    mine = procfs.own_netns(proc)
    found: dict[str, list[dict[str, JSON]]] = {"registries": [], "nginx": [], "apache": []}
    everyone = [p for p in procfs.processes(proc) if p.netns == mine]
    apache_pids = {p.pid for p in everyone if is_apache(p)}
    for process in everyone:
        if is_registry(process):
            env = procfs.environment(process.pid, proc)
            found["registries"].append(parse_registry(process, procfs.cwd(process.pid, proc), env))
        elif (args := nginx_argv(process)) is not None:
            found["nginx"].append(parse_nginx(process, args, procfs.cwd(process.pid, proc)))
        elif process.pid in apache_pids and process.ppid not in apache_pids:
            env = procfs.environment(process.pid, proc)
            root = _option(list(process.argv[1:]), "-d") or env.get("APACHE_CONFDIR") or "/etc/apache2"
            envvars = _read_text(procfs.root_path(process.pid, os.path.join(root, "envvars"), proc))
            found["apache"].append(parse_apache(process, env, envvars))
    return {"netns": mine, **found}


def registry_running(discovery: object) -> bool | None:
    """Whether the `host.discovery` evidence names a running registry (a process or a container)
    in this network namespace; None when discovery gave nothing to tell by."""
    if not isinstance(discovery, dict):
        return None
    registry = discovery.get("registry")
    return isinstance(registry, dict) and bool(registry.get("pid") or registry.get("container"))
