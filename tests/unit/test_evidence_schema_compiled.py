"""value_mismatch's compiled schemas answer exactly as mismatch() does: on every recorded probe
value, and on thousands of mutations of them (wrong types, missing and unknown fields)."""

from __future__ import annotations

import copy
import random
from typing import Any

from auditor.evidence_schema import _spelled, compile_schema, mismatch, schema_for, value_mismatch

from .test_evidence_shapes import recorded_values

REPLACEMENTS: list[Any] = [None, True, 0, 3.0, 2.5, "text", [], {}, [1, "a"], {"x": 1}]


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for key, member in value.items():
            out += paths(member, (*here, key))
    elif isinstance(value, list):
        for n, member in enumerate(value[:3]):
            out += paths(member, (*here, n))
    return out


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    holder = copied
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = new
    return copied


def removed(value: Any, path: tuple[Any, ...]) -> Any:
    copied = copy.deepcopy(value)
    holder = copied
    for part in path[:-1]:
        holder = holder[part]
    if isinstance(holder, dict):
        del holder[path[-1]]
    return copied


def spelled(schema: dict[str, Any], value: Any) -> str | None:
    return _spelled(compile_schema(schema)(value))


def test_recorded_values_and_their_mutations() -> None:
    chosen = random.Random(15)
    compared = failing = 0
    for _source, name, value in recorded_values():
        schema = schema_for(name)
        assert schema is not None
        assert value_mismatch(name, value) == mismatch(value, schema) is None
        every = paths(value)
        for path in chosen.sample(every, min(len(every), 20)):
            variants = [replaced(value, path, new) for new in chosen.sample(REPLACEMENTS, 3)]
            if path:
                variants.append(removed(value, path))
            if isinstance(value, dict):
                variants.append({**value, "not-a-field": 1})
            for variant in variants:
                want = mismatch(variant, schema)
                assert spelled(schema, variant) == want, (name, path)
                compared += 1
                failing += want is not None
    assert compared > 500 and failing > 200  # the mutations do break the shapes


def test_edge_cases_spelled_alike() -> None:
    schema = {"type": "object", "required": [""], "additionalProperties": False,
              "properties": {"": {"type": "integer"}, "any": {},
                             "either": {"anyOf": [{"type": "object", "required": ["a"]},
                                                  {"type": "array", "items": {"type": "string"}}]}}}
    values: list[Any] = [5, {}, {"": 1.5}, {"": 2.0}, {"": True}, {"": 1, "any": object()}, {"": 1, "x": 1},
                         {"": 1, "either": {}}, {"": 1, "either": [1]}, {"": 1, "either": ["a"]},
                         {"": 1, "either": {"a": 1}}]
    for value in values:
        assert spelled(schema, value) == mismatch(value, schema), value
