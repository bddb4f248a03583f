"""The one atomic writer: whole or nothing, mode and owner as asked, no temp file left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from auditor.atomicfile import write_atomically


def test_bytes_and_streams_replace_the_file_with_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "report.json"
    write_atomically(path, b"one", mode=0o600)
    assert path.read_bytes() == b"one" and path.stat().st_mode & 0o777 == 0o600

    def stream(handle: BinaryIO) -> None:
        handle.write(b"two, ")
        handle.write(b"streamed")

    write_atomically(path, stream)
    assert path.read_bytes() == b"two, streamed" and path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_a_failure_while_writing_keeps_the_old_bytes_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(b"old")

    def broken(handle: BinaryIO) -> None:
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, broken)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml"]


def test_without_parents_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "f", b"x", parents=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_the_owner_is_set_when_given(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomically(path, b"x", mode=0o640, uid=65534, gid=65534)
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
