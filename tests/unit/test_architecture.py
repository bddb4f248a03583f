"""The layering rules of docs/architecture.md, enforced on the source (AST, nothing imported).

- Import contract: checks/ and auditor/judge/ do no I/O. They import, within regaudit, only the
  check API (auditor.checkapi, auditor.model, auditor.errors), auditor.judge and (checks only)
  their own package; no module that reaches the network, the file system, processes or the clock;
  and they call no built-in that does (open, input, exec, eval, __import__).
- No import cycle among regaudit's modules (function-local imports count: they are still a cycle;
  `if TYPE_CHECKING:` imports do not, they never run).
- Findable checks: a built-in check `group.name` is defined in checks/group.py, or in
  checks/group/<module>.py where the name (hyphens as underscores) is the module's name or starts
  with it followed by an underscore.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"auditor": ROOT / "auditor", "auditor.checks": ROOT / "checks", "auditor.reports": ROOT / "reports",
            "auditor.profiles": ROOT / "profiles"}

PURE_ALLOWED = ("auditor.checkapi", "auditor.model", "auditor.errors", "auditor.judge")
IO_MODULES = frozenset({
    "socket", "ssl", "subprocess", "os", "pathlib", "shutil", "tempfile", "io", "glob", "fcntl", "select",
    "selectors", "asyncio", "http", "urllib.request", "httpx", "httpcore", "h11", "h2", "requests", "urllib3",
    "multiprocessing", "threading", "concurrent", "signal", "mmap", "sqlite3", "ctypes", "pty", "time",
    "fileinput", "platform", "pwd", "grp", "resource", "sys", "crossplane", "docker", "paramiko", "netifaces",
    "psutil", "importlib.metadata", "pkgutil", "inspect", "zipfile", "tarfile", "gzip", "shelve", "dbm",
})
IO_BUILTINS = frozenset({"open", "input", "exec", "eval", "compile", "__import__", "breakpoint"})
CLOCK_CALLS = frozenset({"now", "utcnow", "today"})  # checks judge at ev.now, never at the host's clock


def module_name(path: Path) -> str:
    for prefix, base in sorted(PACKAGES.items(), key=lambda kv: -len(str(kv[1]))):
        if path.is_relative_to(base):
            parts = [prefix, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise ValueError(path)


def sources() -> Iterator[tuple[str, Path]]:
    for base in PACKAGES.values():
        for path in sorted(base.rglob("*.py")):
            if "templates" not in path.parts:
                yield module_name(path), path


@dataclass(frozen=True)
class Use:
    module: str  # what is imported (absolute), or the built-in called
    line: int
    kind: str  # "import" | "call"


def uses(source: str, module: str, is_package: bool) -> list[Use]:
    """Every import (absolute, relative ones resolved) and every call of a built-in or clock reader."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Use] = []
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue  # `if TYPE_CHECKING:` imports never run

        if isinstance(node, ast.Import):
            found += [Use(alias.name, node.lineno, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(Use(target, node.lineno, "package" if target == "importlib" else "import"))
            found += [Use(f"{target}.{alias.name}", node.lineno, "from") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in IO_BUILTINS:
                found.append(Use(func.id, node.lineno, "call"))
            elif isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
                found.append(Use(f"<clock>.{func.attr}", node.lineno, "call"))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Why a module of checks/ or auditor/judge/ breaks the import contract (empty when it keeps it)."""
    own = "auditor.checks" if module.startswith("auditor.checks") else "auditor.judge"
    problems = []
    for use in uses(source, module, is_package):
        where = f"{module} line {use.line}"
        if use.kind == "call":
            problems.append(f"{where}: calls {use.module}() (I/O or the host's clock)")
            continue
        name = use.module
        if use.kind == "from":  # `from x import y`: x is judged on its own; y only for importlib
            if name.startswith("importlib.") and name != "importlib.resources":
                problems.append(f"{where}: imports {name} (only importlib.resources, for the package's own data)")
            continue
        if use.kind == "package":
            continue
        if name == "__future__":
            continue
        if name.split(".")[0] == "auditor":
            if not (name.startswith(own) or any(name == a or name.startswith(a + ".") for a in PURE_ALLOWED)):
                problems.append(f"{where}: imports {name} (only the check API and auditor.judge are allowed)")
            continue
        parts = name.split(".")
        if any(".".join(parts[:i]) in IO_MODULES for i in range(1, len(parts) + 1)):
            problems.append(f"{where}: imports {name}, which does I/O")
        if parts[0] == "importlib" and name != "importlib.resources":
            problems.append(f"{where}: imports {name} (only importlib.resources, for the package's own data)")
    return problems


def pure_modules() -> list[tuple[str, Path]]:
    return [(m, p) for m, p in sources() if m.startswith(("auditor.checks", "auditor.judge"))]


def test_import_contract_holds() -> None:
    problems = []
    for module, path in pure_modules():
        problems += violations(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    assert not problems, "checks/ and auditor/judge/ must stay pure:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("import socket\n", "imports socket, which does I/O"),
    ("import subprocess as sp\n", "imports subprocess, which does I/O"),
    ("from pathlib import Path\n", "imports pathlib, which does I/O"),
    ("import httpx\n", "imports httpx, which does I/O"),
    ("from h11 import Connection\n", "imports h11, which does I/O"),
    ("from urllib.request import urlopen\n", "imports urllib.request, which does I/O"),
    ("from auditor.probes import tls\n", "imports auditor.probes"),
    ("from auditor.host.procfs import read\n", "imports auditor.host.procfs"),
    ("from auditor.content import walker\n", "imports auditor.content"),
    ("from ...host import nginx\n", "imports auditor.host"),
    ("text = open('/etc/passwd').read()\n", "calls open()"),
    ("import datetime\nnow = datetime.datetime.now()\n", "calls <clock>.now()"),
    ("import importlib\nm = importlib.import_module('socket')\n", "imports importlib"),
])
def test_import_contract_catches_a_violation(source: str, expected: str) -> None:
    found = violations(source, "auditor.checks.registry.example")
    assert any(expected in p for p in found), found


def test_import_contract_allows_the_check_api_and_judge() -> None:
    source = ("from auditor.checkapi import check\nfrom auditor.judge.units import parse_duration\n"
              "from ._config import PROBE\nimport ipaddress\nfrom importlib import resources\n")
    assert violations(source, "auditor.checks.registry.example") == []
    assert violations("from auditor.checks import tls\n", "auditor.judge.suites")  # judge never imports checks


def import_graph() -> dict[str, set[str]]:
    modules = dict(sources())
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for use in uses(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            if use.kind in ("call", "package"):
                continue
            target = use.module
            while target and target not in modules:  # `from pkg import name`: the module, else the package
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_checks_are_found_where_their_id_says() -> None:
    from auditor.plugins import load_checks

    misplaced = []
    for check_id, item in load_checks().items():
        if not item.module.startswith("auditor.checks."):
            continue  # a third-party plugin
        group, name = check_id.split(".", 1)
        parts = item.module.split(".")[2:]
        stem = name.replace("-", "_")
        ok = parts == [group] or (len(parts) == 2 and parts[0] == group
                                  and (stem == parts[1] or stem.startswith(parts[1] + "_")))
        if not ok:
            misplaced.append(f"{check_id} is in {item.source}")
        assert (ROOT / item.source).is_file(), item.source
    assert not misplaced, misplaced
