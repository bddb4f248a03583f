"""Reads ask for what a file can hold: the storage walk never asks os.read for more than
READ_CHUNK, and bounded.read_bytes asks a small file for 64 KiB, not a megabyte (os.read allocates
what it is asked for; megabytes per small file can cost a memory mapping each time). The bytes
read and the size limits are unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor import bounded
from auditor.content import storage
from auditor.content.storage import StorageReader

from .test_content_fake import new_key, standard_content


def _recording(monkeypatch: pytest.MonkeyPatch, module: object) -> list[int]:
    asked: list[int] = []
    real = os.read

    def read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real(fd, n)

    monkeypatch.setattr(module.os, "read", read)  # type: ignore[attr-defined]
    return asked


def test_storage_walk_reads_in_small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _expected = standard_content(new_key(), new_key())
    reg.write_storage(tmp_path)
    plain = StorageReader(tmp_path).walk()
    asked = _recording(monkeypatch, storage)
    facts = StorageReader(tmp_path).walk()
    assert asked and max(asked) <= storage.READ_CHUNK
    plain["stats"].pop("seconds")
    facts["stats"].pop("seconds")
    assert facts == plain


def test_storage_read_limits_and_large_files(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(3 * storage.READ_CHUNK + 17))
    reader = StorageReader(tmp_path)
    assert reader._read(str(big)) == big.read_bytes()
    with pytest.raises(storage.ProbeError, match="larger than"):
        reader._read(str(big), limit=storage.READ_CHUNK)


def test_bounded_reads_ask_a_small_file_for_little(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = tmp_path / "small.json", tmp_path / "large.bin"
    small.write_bytes(b'{"a": 1}')
    large.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    asked = _recording(monkeypatch, bounded)
    assert bounded.read_bytes(small) == b'{"a": 1}'
    assert max(asked) <= 1 << 16
    assert bounded.read_bytes(large) == large.read_bytes()
    with pytest.raises(bounded.InputError, match="larger than"):
        bounded.read_bytes(large, max_bytes=1024 * 1024)
