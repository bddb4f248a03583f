"""Build the gather-only zipapp: `python -m auditor.fleet.build_zipapp [-o dist/regaudit-gather.pyz]`.

The archive holds the inside gathering and nothing else: the modules of the probes the inside
checks need (computed from the installed catalog), the engine modules they import (found by
reading their imports, function-level ones included), and the pure-Python packages those import.
Compiled packages are never copied (`cryptography` and friends have pure fallbacks in the
gathering code), nor are checks, judging, profiles, reports or signature verification. Sources
are rewritten for Python 3.9 where they use 3.10 syntax at run time (`A | B` in isinstance and in
module-level type aliases). The archive is reproducible: fixed timestamps, sorted entries.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from auditor import __version__

ENTRY = "auditor.fleet.gather_main"
ROOTS = (ENTRY, "auditor.fleet.compat", "auditor.fleet.evidence_sign", "auditor.der")
# Never in the artifact: compiled packages (pure fallbacks exist) and the control host's parts.
EXCLUDED = ("cryptography", "nacl", "bcrypt", "cffi", "_cffi_backend", "sigstore", "rich", "jinja2",
            "jsonschema", "auditor.signing", "auditor.plugins", "auditor.reportapi", "auditor.fleet.build_zipapp",
            # the registry API walk and the outside HTTP stack: imported lazily, never for an inside target
            "auditor.content.auth", "auditor.content.transport", "auditor.content.walker", "auditor.httpclient",
            "auditor.h11pool", "auditor.checks", "auditor.reports", "auditor.report",
            "auditor.runner", "auditor.remediation", "auditor.commands", "auditor.cli")
DEFAULT_OUT = Path("dist") / "regaudit-gather.pyz"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
TYPE_NAMES = {"int", "str", "bytes", "float", "bool", "dict", "list", "tuple", "set", "frozenset", "type"}


def probe_modules() -> dict[str, str]:
    """{probe name: defining module} for every probe an inside or content check needs: what
    `regaudit audit --inside` gathers on the host (content from the storage, scan reports and keys
    from the host's files; never through the registry API, which needs a URL)."""
    from auditor.model import Vantage
    from auditor.plugins import load_checks, load_probes

    probes = load_probes()
    wanted = (Vantage.INSIDE, Vantage.CONTENT)
    names = {n for c in load_checks().values() if c.meta.vantage in wanted for n in c.meta.needs}
    return {name: probes[name].fn.__module__ for name in sorted(names)}


def _excluded(module: str) -> bool:
    return any(module == e or module.startswith(e + ".") for e in EXCLUDED)


def _source(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    return Path(spec.origin)


def _imports(module: str, path: Path) -> set[str]:
    """Every module `module` may import (absolute names; attributes of packages included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (never imported at run time)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def closure(roots: Iterable[str]) -> tuple[set[str], set[str]]:
    """(auditor modules, third-party top-level packages) reachable from `roots`."""
    stdlib = set(sys.stdlib_module_names)
    ours: set[str] = set()
    third: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in ours or _excluded(name):
            continue
        top = name.partition(".")[0]
        if top != "auditor":
            if top not in stdlib and top != "__future__" and not _excluded(top):
                third.add(top)
            continue
        try:
            path = _source(name)
        except (ImportError, ValueError):
            path = None
        if path is None or path.suffix != ".py":
            continue  # an attribute of a package, not a module
        ours.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
        todo.extend(_imports(name, path))
    return ours, _third_party_closure(third, stdlib)


def _third_party_closure(tops: set[str], stdlib: set[str]) -> set[str]:
    """The packages named and those their distributions require on Python 3.9 (no extras)."""
    from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

    from packaging.requirements import Requirement

    dists = packages_distributions()
    tops_of: dict[str, list[str]] = {}
    for top, names in dists.items():
        for name in names:
            tops_of.setdefault(name.lower().replace("_", "-"), []).append(top)
    found: set[str] = set()
    todo = sorted(tops)
    while todo:
        top = todo.pop()
        if top in found or _excluded(top) or top in stdlib:
            continue
        if importlib.util.find_spec(top) is None:
            raise SystemExit(f"build_zipapp: {top} is needed by the gathering but not installed")
        found.add(top)
        for dist_name in dists.get(top, []):
            try:
                requires = distribution(dist_name).requires or []
            except PackageNotFoundError:
                continue
            for text in requires:
                req = Requirement(text)
                if req.marker is None or req.marker.evaluate({"python_version": "3.9", "extra": ""}):
                    todo.extend(t for t in tops_of.get(req.name.lower().replace("_", "-"), [])
                                if not t.startswith("_"))
    return found


class _Py39(ast.NodeTransformer):
    """Rewrite `A | B` where Python 3.9 evaluates it: isinstance/issubclass and module-level aliases."""

    def __init__(self) -> None:
        self.changed = False

    @staticmethod
    def _operands(node: ast.expr) -> list[ast.expr]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return _Py39._operands(node.left) + _Py39._operands(node.right)
        return [node]

    @staticmethod
    def _typelike(node: ast.expr) -> bool:
        if isinstance(node, ast.Subscript):
            return True
        if isinstance(node, ast.Constant):
            return node.value is None
        if isinstance(node, ast.Name):
            return node.id in TYPE_NAMES or node.id[:1].isupper()
        return isinstance(node, ast.Attribute) and node.attr[:1].isupper()

    @staticmethod
    def _union(parts: list[ast.expr]) -> ast.expr:
        return ast.Subscript(
            value=ast.Attribute(value=ast.Call(func=ast.Name("__import__", ast.Load()), args=[ast.Constant("typing")],
                                               keywords=[]), attr="Union", ctx=ast.Load()),
            slice=ast.Tuple(elts=parts, ctx=ast.Load()), ctx=ast.Load())

    def _unions_in(self, node: ast.expr) -> ast.expr:
        """Every `A | B` of types inside `node` (a functional TypedDict's field types) as typing.Union."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            parts = self._operands(node)
            if all(self._typelike(p) for p in parts):
                self.changed = True
                return self._union([self._unions_in(p) for p in parts])
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.expr):
                setattr(node, field, self._unions_in(value))
            elif isinstance(value, list):
                setattr(node, field, [self._unions_in(v) if isinstance(v, ast.expr) else v for v in value])
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "TypedDict":
            node.args = [self._unions_in(a) for a in node.args]
        if isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
            second = node.args[1]
            if isinstance(second, ast.BinOp) and isinstance(second.op, ast.BitOr):
                node.args[1] = ast.Tuple(elts=self._operands(second), ctx=ast.Load())
                self.changed = True
        return node

    def rewrite_aliases(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            value = stmt.value if isinstance(stmt, ast.Assign) else None
            if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr):
                parts = self._operands(value)
                if all(self._typelike(p) for p in parts):
                    stmt.value = self._union(parts)  # type: ignore[attr-defined]
                    self.changed = True


def for_py39(source: str) -> str:
    """`source` rewritten so Python 3.9 runs it (unchanged when nothing needs it)."""
    tree = ast.parse(source)
    rewriter = _Py39()
    rewriter.visit(tree)
    rewriter.rewrite_aliases(tree)
    if not rewriter.changed:
        return source
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _package_files(top: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(top)
    assert spec is not None and spec.origin is not None
    if not spec.submodule_search_locations:
        return [(Path(spec.origin).name, Path(spec.origin))]
    root = Path(spec.origin).parent
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".so", ".pyd", ".pyc", ".c", ".pyx"):
            continue
        out.append((f"{top}/{path.relative_to(root).as_posix()}", path))
    return out


def build(out: Path) -> dict[str, object]:
    """Write the zipapp to `out`; returns its manifest (what went in)."""
    probes = probe_modules()
    ours, third = closure([*ROOTS, *probes.values()])
    manifest: dict[str, object] = {"tool": "regaudit-gather", "version": __version__, "probes": probes,
                "modules": sorted(ours), "packages": sorted(third), "python_requires": ">=3.9"}
    entries: dict[str, bytes] = {}
    for module in sorted(ours):
        path = _source(module)
        assert path is not None
        arcname = module.replace(".", "/") + ("/__init__.py" if path.name == "__init__.py" else ".py")
        entries[arcname] = for_py39(path.read_text(encoding="utf-8")).encode("utf-8")
    for package in {m.rpartition(".")[0] for m in ours if "." in m}:
        entries.setdefault(package.replace(".", "/") + "/__init__.py", b"")
    for top in sorted(third):
        for arcname, path in _package_files(top):
            entries[arcname] = path.read_bytes()
    entries["auditor/fleet/_manifest.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    entries["__main__.py"] = (b"import sys\nfrom auditor.fleet.gather_main import main\nsys.exit(main())\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
            for arcname in sorted(entries):
                info = zipfile.ZipInfo(arcname, FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, entries[arcname])
    tmp.chmod(0o755)
    tmp.replace(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditor.fleet.build_zipapp", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help=f"archive path (default {DEFAULT_OUT})")
    parser.add_argument("--manifest", action="store_true", help="print what went in as JSON")
    args = parser.parse_args(argv)
    manifest = build(args.output)
    if args.manifest:
        json.dump(manifest, sys.stdout, indent=1)
        sys.stdout.write("\n")
    size = args.output.stat().st_size
    print(f"built {args.output} ({size // 1024} KiB): {len(manifest['modules'])} regaudit modules, "  # type: ignore[arg-type]
          f"packages: {', '.join(manifest['packages']) or 'none'}", file=sys.stderr)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
