"""Start-up stays small: `regaudit --version` and `regaudit checks` do not import the heavy modules.

An import test, not a timing test: each command runs in a fresh interpreter, which then lists the
modules it holds. `python -X importtime -m auditor --version` shows the cost (docs/performance.md).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from auditor import cli

HEAVY = ("sigstore", "cryptography.x509", "jinja2", "rich", "httpx", "httpcore", "h2", "auditor.remediation",
         "auditor.reports", "reports", "auditor.tlsprobe.scanner", "auditor.judge.certs",
         "auditor.content.walker", "auditor.history", "auditor.signing", "rfc3987_syntax", "lark")

PROGRAM = """
import contextlib, io, json, runpy, sys
sys.argv = ["regaudit", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("auditor", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*argv: str) -> tuple[object, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(argv)], capture_output=True, text=True,
                          timeout=120, check=True)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["code"], data["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize("argv", [("--version",), ("checks",), ("checks", "--format", "json"),
                                  ("explain", "tls.protocols")])
def test_light_commands_import_no_heavy_module(argv: tuple[str, ...]) -> None:
    code, modules = _modules_after(*argv)
    assert code in (0, None)
    assert _heavy(modules) == []


def test_version_imports_no_command_module() -> None:
    _code, modules = _modules_after("--version")
    assert not [m for m in modules if m.startswith(("auditor.commands.", "auditor.checks", "auditor.probes"))]


def test_the_audit_does_load_what_it_uses() -> None:
    """The detector works: an audit's parser pulls the audit machinery in."""
    _code, modules = _modules_after("audit", "--help")
    assert "auditor.commands.audit" in modules and "auditor.commands.remediate" not in modules


def test_a_tls_only_audit_imports_the_tls_check_and_probe_alone(tmp_path: Path) -> None:
    """`--select tls` loads checks/tls.py and probes/tls.py, not the other checks and probes (the registry
    API walker, the firewall model, jsonschema, httpx); against a closed loopback port, so nothing answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, modules = _modules_after("audit", f"https://127.0.0.1:{port}", "--select", "tls",  # progress: no tty
                                   "--no-history", "--format", "json", "--output", str(tmp_path))
    assert code == 3 and (tmp_path / "regaudit.json").is_file()  # 3: nothing could be gathered
    assert [m for m in modules if m.startswith(("auditor.checks.", "auditor.probes."))] == \
        ["auditor.checks.tls", "auditor.probes.tls"]
    used = ("auditor.judge.certs", "auditor.tlsprobe.scanner", "cryptography.x509",  # the TLS scan's own
            "auditor.reports", "auditor.reports.json_report")  # the one report asked for
    assert [m for m in _heavy(modules) if not m.startswith(used)] == []
    assert "auditor.reports.json_report" in modules
    assert not [m for m in modules if m.startswith(("jsonschema", "auditor.content", "auditor.judge.firewall",
                                                    "auditor.judge.cosign", "auditor.host.", "auditor.plugins",
                                                    "importlib.metadata"))]  # no plugin: the index answers


def test_command_table_names_every_registered_command() -> None:
    registered: dict[str, str] = {}
    for name in cli.command_modules():
        parser = cli._Parser(prog="x")
        sub = parser.add_subparsers()
        __import__(f"auditor.commands.{name}", fromlist=["register"]).register(sub)
        registered.update({command: name for command in sub.choices})
    assert registered == cli.COMMAND_MODULES, "a new command: add it to auditor.cli.COMMAND_MODULES"


def test_builtin_profiles_are_valid_against_the_schema() -> None:
    """The run skips the JSON Schema for shipped profiles (start-up cost): this test is the validation."""
    from importlib import resources

    import jsonschema
    import yaml

    from auditor import profile

    validator = jsonschema.Draft202012Validator(profile._schema(), format_checker=jsonschema.FormatChecker())
    names = profile.builtin_names()
    assert names
    for name in names:
        text = resources.files(profile.BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        data = profile._plain(yaml.safe_load(text))
        assert not list(validator.iter_errors(data)), name
        assert profile._parse(f"builtin:{name}", text) == yaml.safe_load(text), name  # libyaml reads the same
        assert profile.load_profile(name).name
