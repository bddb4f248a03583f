"""The `regaudit` command line: subcommands are modules of auditor.commands.

Errors a user can cause end in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from auditor import __version__
from auditor.errors import PluginError, UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (it does already; keep the prefix uniform)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"regaudit: error: {message}\n")


# Which module of auditor.commands registers each command: only that module is imported to run it
# (`regaudit --version` imports none). A command missing here still works: every module is then
# imported, as for `regaudit --help` (tests/unit/test_startup.py keeps the table complete).
COMMAND_MODULES = {
    "audit": "audit", "checks": "catalog", "explain": "catalog", "profiles": "catalog",
    "compliance": "compliance", "evaluate": "evaluate", "history": "history", "diff": "history",
    "remediate": "remediate", "schedule": "schedule", "verify-report": "verify_report", "fleet": "fleet",
    "watch": "watch",
}


def command_modules() -> list[str]:
    """Every module of auditor.commands that registers commands (not the _private helpers)."""
    import pkgutil  # only to list every command (`regaudit --help`, an unknown command)

    package = importlib.import_module("auditor.commands")
    return sorted(i.name for i in pkgutil.iter_modules(package.__path__) if not i.name.startswith("_"))


def _wanted_command(argv: Sequence[str]) -> str | None:
    """The command named in argv (the first argument that is not a global option), if any."""
    for arg in argv:
        if arg in ("--debug",):
            continue
        return None if arg.startswith("-") else arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the module of the command it names is imported when known."""
    parser = _Parser(prog="regaudit", description="Audit a self-hosted Docker registry against a hardening profile.")
    parser.add_argument("--version", action="version", version=f"regaudit {__version__}")
    parser.add_argument("--debug", action="store_true", help="log probe and check internals to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = _wanted_command(argv) if argv is not None else None
    if argv is not None and wanted is None and "--version" in argv:
        return parser  # argparse prints the version and exits before any command matters
    known = COMMAND_MODULES.get(wanted) if wanted else None
    for name in [known] if known else command_modules():
        module = importlib.import_module(f"auditor.commands.{name}")
        module.register(sub)
    return parser


# Optional packages that other libraries import when installed, at a start-up cost regaudit never
# needs: jsonschema's format checkers import rfc3987_syntax, which builds a Lark grammar (about a
# second of CPU) for the `iri` formats; none of regaudit's schemas uses them.
NOT_IMPORTED = ("rfc3987_syntax",)


def main(argv: Sequence[str] | None = None) -> int:
    blocked = [name for name in NOT_IMPORTED if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        return _main(argv)
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="regaudit: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"regaudit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PluginError as exc:
        print(f"regaudit: error: plugin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("regaudit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
