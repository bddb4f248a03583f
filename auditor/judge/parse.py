"""Bounded parsing of untrusted text (pure): YAML and JSON within depth, size and expansion limits.

A hostile or broken input ends in one clear `InputError` naming its source instead of a hang, a
RecursionError or unbounded memory:

- YAML: safe tags only, nesting at most `MAX_YAML_DEPTH` levels, and at most `MAX_YAML_NODES` nodes once
  every alias is expanded (the "billion laughs" document of ten levels of nine aliases is refused
  in milliseconds; recursive aliases are refused);
- JSON: at most `max_bytes` of text and `MAX_JSON_DEPTH` levels of nesting.

`InputError` is a `ValueError`. Reading files within bounds (I/O) is auditor.bounded's job; it
re-exports these parsers, so callers outside the judgement layer use `auditor.bounded` alone.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_JSON_DEPTH = 128
MAX_YAML_NODES = 200_000


class InputError(ValueError):
    """An input is unreadable, too large, too deep, or not what it must be; `str()` names it."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def decode_text(data: bytes, source: str) -> str:
    """`data` as UTF-8 text (a BOM is dropped); InputError naming the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses documents nested deeper than `max_depth`."""

    max_depth = MAX_YAML_DEPTH

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {self.max_depth} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document with every alias expanded; stops counting past `limit`.

    Raises ValueError on a recursive alias. Iterative (no recursion) and memoised per node, so a
    DAG of aliases is measured in time linear in its distinct nodes.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            active.discard(key)
            sizes[key] = min(limit + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if key in sizes:
            continue
        if key in active:
            raise ValueError("recursive alias (a node contains itself)")
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                raise ValueError("recursive alias (a node contains itself)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_documents(text: str | bytes, source: str, *, max_depth: int = MAX_YAML_DEPTH,
                        max_nodes: int = MAX_YAML_NODES) -> list[Any]:
    """Every document of a YAML stream, safe-loaded within the depth and expansion bounds.

    Raises InputError for bounds and yaml.YAMLError for syntax (callers report marks from it).
    """
    if isinstance(text, bytes):
        text = decode_text(text, source)
    loader = _BoundedLoader(text)
    loader.max_depth = max_depth
    docs: list[Any] = []
    total = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            try:
                total += _expanded_size(node, max_nodes)
            except ValueError as exc:
                raise InputError(source, str(exc)) from None
            if total > max_nodes:
                raise InputError(source, f"more than {max_nodes} nodes once aliases are expanded "
                                         "(alias expansion bomb?)")
            docs.append(loader.construct_document(node))
    except yaml.composer.ComposerError as exc:
        if exc.problem and exc.problem.startswith("nesting deeper"):
            raise InputError(source, f"YAML {exc.problem}") from None
        raise
    except RecursionError:
        raise InputError(source, "YAML nested too deeply to parse") from None
    finally:
        loader.dispose()
    return docs


def load_yaml(text: str | bytes, source: str, *, max_depth: int = MAX_YAML_DEPTH,
              max_nodes: int = MAX_YAML_NODES) -> Any:
    """The single YAML document in `text` (None when empty), bounded as load_yaml_documents."""
    docs = load_yaml_documents(text, source, max_depth=max_depth, max_nodes=max_nodes)
    if len(docs) > 1:
        raise yaml.composer.ComposerError(None, None, "expected a single document, found more than one", None)
    return docs[0] if docs else None


def json_depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), computed without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            stack.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            depth += 1
            stack.extend((v, depth) for v in item)
        deepest = max(deepest, depth)
    return deepest


def load_json(text: str | bytes, source: str, *, max_bytes: int = MAX_FILE_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`text` decoded as JSON within the size and depth bounds.

    Raises InputError for every problem (size, depth, encoding, syntax), its reason naming it.
    """
    if len(text) > max_bytes:
        raise InputError(source, f"larger than {max_bytes} bytes")
    if isinstance(text, bytes):
        text = decode_text(text, source)
    try:
        value = json.loads(text)
    except RecursionError:
        raise InputError(source, f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise InputError(source, f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise InputError(source, f"invalid JSON: {exc}") from None
    # Depth never exceeds the number of opening brackets (those inside strings only overcount): a
    # small document skips the walk (10,000 signature payloads per audit).
    if text.count("{") + text.count("[") > max_depth and json_depth(value) > max_depth:
        raise InputError(source, f"JSON nested deeper than {max_depth} levels")
    return value
