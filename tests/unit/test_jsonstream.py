"""auditor.jsonstream: chunked JSON that parses back to the same document, one line per deep member."""

from __future__ import annotations

import io
import json
import random

import pytest

from auditor import jsonstream
from auditor.jsonstream import dumps_bytes, write_json


def _random_doc(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(["dict", "list", "str", "int", "float", "bool", "none"] if depth < 5 else ["str", "int"])
    if kind == "dict":
        return {rng.choice(["a", "é", "k\"q", "long key " * 3, str(rng.random())]): _random_doc(rng, depth + 1)
                for _ in range(rng.randint(0, 5))}
    if kind == "list":
        return [_random_doc(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {"str": "x\n\u2603\"\\", "int": rng.randint(-10**12, 10**12), "float": rng.random() * 1e6,
            "bool": rng.random() < 0.5, "none": None}[kind]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("expand", [0, 1, 2, 5])
def test_round_trip(seed: int, expand: int) -> None:
    doc = _random_doc(random.Random(seed))
    data = dumps_bytes(doc, expand=expand, sort_keys=bool(seed % 2))
    assert json.loads(data) == doc
    assert data.endswith(b"\n")


def test_non_string_keys_as_json_writes_them() -> None:
    doc = {7: "a", 2.5: "b", True: "c", None: "d"}
    assert json.loads(dumps_bytes(doc, expand=1)) == json.loads(json.dumps(doc))


def test_layout_one_line_per_member_below_expand() -> None:
    doc = {"results": [{"check": "a", "observed": {"x": [1, 2]}}, {"check": "b"}], "empty": [], "n": 1}
    lines = dumps_bytes(doc, expand=2).decode().splitlines()
    assert lines == ['{', ' "results": [', '  {"check": "a", "observed": {"x": [1, 2]}},', '  {"check": "b"}',
                     ' ],', ' "empty": [],', ' "n": 1', '}']


def test_large_documents_are_written_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", 1000)
    monkeypatch.setattr(jsonstream, "CHUNK_ITEMS", 8)
    writes: list[int] = []

    class Recorder(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            writes.append(len(data))
            return super().write(data)

    doc = {"tags": [{"repo": f"r{i}", "tag": "v1", "digest": "sha256:" + "0" * 64} for i in range(2000)]}
    out = Recorder()
    write_json(doc, out, expand=2)
    assert json.loads(out.getvalue()) == doc
    assert len(writes) > 100 and max(writes) < 2000
