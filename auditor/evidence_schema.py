"""JSON Schemas of probe values: derived from the declared shapes, shipped, and checked per value.

Contract:
- `schema_of(shape)` turns a shape of auditor/judge/shapes.py (TypedDict, dict[str, X], list[X],
  str/int/float/bool/None, unions, Any) into JSON Schema (draft 2020-12). scripts/evidence_schemas.py
  writes one file per probe into auditor/schemas/evidence/ from it; a test keeps them equal.
- `schema_for(probe)` reads the shipped file (None for a probe without one, e.g. a plugin's).
- `mismatch(value, schema)` is None when the value fits, else "FIELD: reason" for the first field
  that does not (FIELD as `tags[3].digest`). One walk over the value: linear in its size, so the
  10,000-tag content record costs one pass; nothing heavy is imported (no jsonschema at run time).
- `value_mismatch(probe, value)` answers as `mismatch(value, schema_for(probe))`, with the schema
  compiled once into nested closures (`compile_schema`): the schema is read once per probe, not
  once per field of each of 10,000 tags, and a path is spelled only for the field that fails.
"""

from __future__ import annotations

import json
import logging
import types
import typing
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from auditor.checkapi import ProbeRecord
from auditor.model import JSON

log = logging.getLogger(__name__)

SCHEMA_DIR = ("schemas", "evidence")  # inside the auditor package
DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def schema_file_name(probe: str) -> str:
    return f"{probe}.schema.json"


def schema_of(shape: Any) -> dict[str, JSON]:
    """JSON Schema of a declared shape (module contract)."""
    if shape is Any:
        return {}
    if typing.is_typeddict(shape):
        optional = shape.__optional_keys__
        hints = typing.get_type_hints(shape)
        properties = {key: schema_of(hints[key]) for key in shape.__annotations__}
        out: dict[str, JSON] = {"type": "object", "properties": properties}
        required = [k for k in shape.__annotations__ if k not in optional]
        if required:
            out["required"] = required
        return out
    if shape in SCALARS:
        return {"type": SCALARS[shape]}
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if origin in (typing.Union, types.UnionType):
        if all(a in SCALARS for a in args):
            return {"type": [SCALARS[a] for a in args]}
        plain = [a for a in args if a is not type(None)]
        if len(plain) == 1:
            inner = schema_of(plain[0])
            if isinstance(inner.get("type"), str):
                return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [schema_of(a) for a in args]}
    if origin is list:
        return {"type": "array", "items": schema_of(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(args[1])}
    raise TypeError(f"no JSON Schema for shape {shape!r}")


def probe_schema(probe: str, shape: Any, description: str = "") -> dict[str, JSON]:
    """The shipped schema file of one probe."""
    body = schema_of(shape)
    return {"$schema": DIALECT, "$id": f"https://regaudit.dev/schemas/evidence/{schema_file_name(probe)}",
            "title": probe, "description": description, **body}


@cache
def schema_for(probe: str) -> dict[str, Any] | None:
    """The shipped schema of a probe's value, or None when the probe ships none."""
    try:
        place = resources.files("auditor")
        for part in (*SCHEMA_DIR, schema_file_name(probe)):
            place = place.joinpath(part)  # one part at a time: Python 3.9's joinpath takes one
        text = place.read_text()
    except (FileNotFoundError, OSError):
        return None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _type_ok(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    return False


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _type_ok(value, name):
            return name
    return type(value).__name__


def mismatch(value: Any, schema: dict[str, Any], where: str = "") -> str | None:
    """None when `value` fits `schema`, else "FIELD: reason" (module contract)."""
    wanted = schema.get("type")
    if wanted is not None:
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if not any(_type_ok(value, n) for n in names):
            return f"{where or '(value)'}: expected {' or '.join(names)}, found {_kind(value)}"
    if "anyOf" in schema:
        found = [mismatch(value, s, where) for s in schema["anyOf"]]
        if all(found):
            return found[0]
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key not in value:
                return f"{where + '.' if where else ''}{key}: missing"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = properties.get(key, extra)
            if sub is False:
                return f"{where + '.' if where else ''}{key}: not a field of this shape"
            if isinstance(sub, dict) and sub:
                found_error = mismatch(item, sub, f"{where + '.' if where else ''}{key}")
                if found_error:
                    return found_error
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict) and items:
            for n, item in enumerate(value):
                found_error = mismatch(item, items, f"{where}[{n}]")
                if found_error:
                    return found_error
    return None


def fit_to_shape(record: ProbeRecord) -> ProbeRecord:
    """The record, or an `error` record naming the field when an `ok` value does not fit the probe's
    declared shape (auditor/judge/shapes.py): a check never judges a value of another shape. The audit
    applies it to what it gathered, the fleet to what a gather-only zipapp sends."""
    if record.state != "ok":
        return record
    wrong = value_mismatch(record.name, record.value)
    if wrong is None:
        return record
    log.warning("probe %s: value does not fit its declared shape: %s", record.name, wrong)
    return ProbeRecord(record.name, "error", None,
                       f"the probe's value does not fit its declared shape (docs/evidence.md): {wrong}",
                       record.seconds)


def value_mismatch(probe: str, value: JSON) -> str | None:
    """Why an `ok` value of `probe` does not fit its shipped schema ("FIELD: reason"), or None."""
    validate = _compiled(probe)
    return None if validate is None else _spelled(validate(value))


@cache
def _compiled(probe: str) -> Validator | None:
    schema = schema_for(probe)
    return None if schema is None else compile_schema(schema)


# A compiled schema: None when the value fits, else (the failing field's path, innermost part
# first: keys and list indexes; the reason).
Failure = tuple[list[str | int], str]
Validator = Callable[[Any], Failure | None]
_EXACT: dict[type, tuple[str, ...]] = {str: ("string",), bool: ("boolean",), int: ("integer", "number"),
                                       type(None): ("null",), dict: ("object",), list: ("array",)}
_ACCEPT = object()  # a field any value fits ({} or True)
_EXPECTED = "expected "  # how a type mismatch's reason begins (a missing or unknown field's never does)


def _spelled(failure: Failure | None) -> str | None:
    """"FIELD: reason" as `mismatch` spells it (a value of the wrong type at the top is "(value)")."""
    if failure is None:
        return None
    path, reason = failure
    where = ""
    for part in reversed(path):
        where = f"{where}[{part}]" if isinstance(part, int) else f"{where + '.' if where else ''}{part}"
    if reason.startswith(_EXPECTED):
        where = where or "(value)"
    return f"{where}: {reason}"


def _type_test(names: list[str]) -> Callable[[Any], bool]:
    """`any(_type_ok(value, n) for n in names)`, by the value's exact type where it is a JSON one."""
    wanted = set(names)
    accepted = frozenset(t for t, kinds in _EXACT.items() if wanted.intersection(kinds))
    number, integer = "number" in wanted, "integer" in wanted

    def test(value: Any) -> bool:
        kind = type(value)
        if kind in accepted:
            return True
        if kind is float:
            return number or (integer and value.is_integer())
        if kind in _EXACT:
            return False
        return any(_type_ok(value, n) for n in names)

    return test


def _field(schema: Any) -> Validator | object | bool:
    """A property's or item's check: False (no value allowed), _ACCEPT, or a compiled schema."""
    if schema is False:
        return False
    if isinstance(schema, dict) and schema:
        return compile_schema(schema)
    return _ACCEPT


def compile_schema(schema: dict[str, Any]) -> Validator:
    """`mismatch(value, schema)` as a function of the value (module contract), its path unspelled."""
    wanted = schema.get("type")
    names = None if wanted is None else ([wanted] if isinstance(wanted, str) else list(wanted))
    type_ok = None if names is None else _type_test(names)
    expected = "" if names is None else f"{_EXPECTED}{' or '.join(names)}, found "
    alternatives = [compile_schema(s) for s in schema["anyOf"]] if "anyOf" in schema else []
    properties = {key: _field(sub) for key, sub in (schema.get("properties") or {}).items()}
    extra = _field(schema.get("additionalProperties", True))
    required = tuple(schema.get("required") or ())
    items = schema.get("items")
    item = compile_schema(items) if isinstance(items, dict) and items else None

    def validate(value: Any) -> Failure | None:
        if type_ok is not None and not type_ok(value):
            return [], expected + _kind(value)
        if alternatives:
            first = None
            for alternative in alternatives:
                failure = alternative(value)
                if failure is None:
                    break
                first = first or failure
            else:
                return first
        if isinstance(value, dict):
            for key in required:
                if key not in value:
                    return [key], "missing"
            for key, member in value.items():
                check = properties.get(key, extra)
                if check is _ACCEPT:
                    continue
                if check is False:
                    return [key], "not a field of this shape"
                failure = check(member)  # type: ignore[operator]
                if failure is not None:
                    failure[0].append(key)
                    return failure
        elif isinstance(value, list) and item is not None:
            for n, member in enumerate(value):
                failure = item(member)
                if failure is not None:
                    failure[0].append(n)
                    return failure
        return None

    return validate
