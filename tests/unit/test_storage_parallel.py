"""The storage walk read by several threads gives exactly the facts of a one-thread walk: same tag
order, same largest layer and image (ties: the first repository wins), same read count."""

from __future__ import annotations

from pathlib import Path

from auditor.content import storage
from auditor.content.storage import StorageReader

from .test_content_fake import new_key, standard_content


def _facts(root: Path, workers: int) -> dict:
    facts = StorageReader(root).walk(workers=workers)
    facts["stats"].pop("seconds")
    return facts


def test_threaded_walk_equals_one_thread(tmp_path: Path) -> None:
    trusted, untrusted = new_key(), new_key()
    reg, _expected = standard_content(trusted, untrusted)
    for n in range(50):
        # Two images share the largest size, in repositories far apart (different threads' shares).
        name, size = ("big", 90000) if n in (7, 44) else (f"img-{n}", 1000 + n)
        image = reg.push_image(f"many/repo-{n:02d}", "v1", name, size=size)
        reg.sign_legacy(f"many/repo-{n:02d}", image.manifest, trusted if n % 3 else untrusted)
        reg.push_image(f"many/repo-{n:02d}", "v2", f"img-{n}-b", size=500)
    reg.write_storage(tmp_path)
    one = _facts(tmp_path, 1)
    assert one["repositories"] >= 3 * storage.MIN_REPOS_PER_WORKER  # three threads' shares at least
    for workers in (2, 3, 4):
        assert _facts(tmp_path, workers) == one
    assert one["largest_layer"]["repo"] == "many/repo-07"
