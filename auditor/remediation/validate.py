"""Validators run on the live paths after the atomic writes and before any reload.

nginx: `nginx -t -c <conf>` with the running master's -p/-g; Apache: `apache2 -t -d ... -f ...`
with the running instance's environment (APACHE_* from /proc/PID/environ, as discovered); the
registry: the YAML parses and the engine's registry.config-valid judgement (an audit session of the
file: the config.registry probe reads it, the check judges it against checks/registry/config.schema.json)
does not fail; iptables: `iptables-restore --test --noflush`.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

import yaml

from auditor import bounded
from auditor.model import Status
from auditor.subproc import in_namespaces

from .model import FileChange
from .procs import StepError, must

CONFIG_VALID = "registry.config-valid"


def _nginx_argv(info: dict[str, Any], conf: str) -> list[str]:
    """`nginx -t -q -c CONF` with the running master's -p and -g, taken from its argv (one list
    element per argument, so `-g 'daemon off;'` stays one argument), never from a split string."""
    args = [str(a) for a in info.get("argv") or []]
    argv = [str(info.get("exe") or "nginx"), "-t", "-q", "-c", conf]
    for flag in ("-p", "-g"):
        value = option_value(args[1:], flag)
        if value is not None:
            argv += [flag, value]
    return argv


def option_value(args: list[str], flag: str) -> str | None:
    """The value of `-x value` or `-xvalue` in an argv list (the last one wins), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag) and len(arg) > len(flag) and not arg.startswith("--"):
            value = arg[len(flag):]
    return value


def _apache_argv(info: dict[str, Any], conf: str) -> list[str]:
    argv = [str(info.get("exe") or "apache2"), "-t"]
    if info.get("server_root"):
        argv += ["-d", str(info["server_root"])]
    argv += ["-f", conf]
    for define in info.get("defines") or []:
        argv += ["-D", str(define)]
    return argv


def validation_command(change: FileChange, services: dict[str, dict[str, Any]]) -> str:
    if change.validate == "nginx":
        info = services.get("nginx") or {}
        return shlex.join(_nginx_argv(info, str(info.get("config") or change.path)))
    if change.validate == "apache":
        info = services.get("apache") or {}
        return shlex.join(_apache_argv(info, str(info.get("config") or change.path))) + \
            " (with the running instance's APACHE_* environment)"
    if change.validate == "compose":
        return f"docker-compose -f {change.path} config -q"
    return f"validate {change.path}: YAML, registry_config.schema.json, registry.config-valid"


def validate_nginx(info: dict[str, Any], path: str) -> None:
    conf = str(info.get("config") or path)
    must(in_namespaces(info.get("pid"), _nginx_argv(info, conf), ("mnt",)), f"nginx -t -c {conf}")


def validate_apache(info: dict[str, Any], path: str) -> None:
    conf = str(info.get("config") or path)
    env = {**os.environ, **{k: str(v) for k, v in (info.get("env") or {}).items()}}
    must(in_namespaces(info.get("pid"), _apache_argv(info, conf), ("mnt",)), f"apache2 -t -f {conf}", env=env)


def validate_registry(path: str) -> None:
    """The file parses, and the engine's registry.config-valid judgement, run by an audit session on
    the file (the config.registry probe reads it as any audit does), does not fail."""
    try:
        config = bounded.load_yaml_file(path, what="registry config")
    except (bounded.InputError, yaml.YAMLError) as exc:
        raise StepError(f"registry config {path} does not parse: {exc}") from None
    if not isinstance(config, dict):
        raise StepError(f"registry config {path} is not a mapping")
    from auditor.plugins import load_checks
    from auditor.profile import Profile
    from auditor.runner import RunOptions, Selection
    from auditor.session import AuditSession
    from auditor.target import Target

    target = Target(inside=True, paths={"registry_config": os.path.abspath(path)})
    selection = Selection(Profile("remediation-validate"), (CONFIG_VALID,))
    report = AuditSession(load_checks(), selection, RunOptions(deadline=60.0)).audit(target).report
    results = [r for r in report.results if r.check_id == CONFIG_VALID]
    if not results:
        raise StepError(f"registry config {path}: {CONFIG_VALID} was not judged")
    for result in results:
        if result.status in (Status.FAIL, Status.ERROR):
            raise StepError(f"registry config {path} is invalid: {result.message}")


def validate_compose(path: str) -> None:
    """The compose file parses, and `docker-compose config -q` accepts it when docker-compose is installed."""
    import shutil

    try:
        doc = bounded.load_yaml_file(path, what="compose file")
    except (bounded.InputError, yaml.YAMLError) as exc:
        raise StepError(f"compose file {path} does not parse: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise StepError(f"compose file {path} has no services mapping")
    tool = shutil.which("docker-compose")
    if tool:
        must([tool, "-f", path, "config", "-q"], f"docker-compose -f {path} config -q")


def validate(change: FileChange, services: dict[str, dict[str, Any]]) -> None:
    """Raise StepError when the live file at change.path is rejected by its validator."""
    if change.validate == "nginx":
        validate_nginx(services.get("nginx") or {}, change.path)
    elif change.validate == "apache":
        validate_apache(services.get("apache") or {}, change.path)
    elif change.validate == "registry":
        validate_registry(change.path)
    elif change.validate == "compose":
        validate_compose(change.path)
