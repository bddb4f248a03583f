"""The storage walk read by several threads (as it does when its reads wait on the disk) gives
exactly the facts of a one-thread walk: same tag order, same largest layer and image (ties: the
first repository wins), same read count. A walk the page cache answers stays in one thread."""

from __future__ import annotations

from pathlib import Path

from auditor.content import storage
from auditor.content.storage import StorageReader

from .test_content_fake import many_repositories, new_key, standard_content


def _facts(root: Path, workers: int) -> dict:
    # A threshold below zero blocks per read: the first batch "waited on the disk", the rest is threaded.
    facts = StorageReader(root).walk(workers=workers, disk_blocks_per_read=-1.0)
    facts["stats"].pop("seconds")
    return facts


def test_threaded_walk_equals_one_thread(tmp_path: Path) -> None:
    many_repositories(tmp_path, 80, big=(7, 44), second_tag=True)  # the largest size in different threads' shares
    one = _facts(tmp_path, 1)
    assert one["repositories"] >= 5 * storage.MIN_REPOS_PER_WORKER  # one batch, then four threads' shares
    for workers in (2, 3, 4):
        assert _facts(tmp_path, workers) == one
    assert one["largest_layer"]["repo"] == "many/repo-07"


def test_threads_only_when_reads_wait_on_the_disk(tmp_path: Path, monkeypatch) -> None:
    assert not storage.waits_on_disk(1000, 0)  # the page cache answered every read
    assert not storage.waits_on_disk(1000, 400)  # readahead for a few files
    assert storage.waits_on_disk(1000, 8000)  # most reads fetched blocks from the device
    assert not storage.waits_on_disk(0, 0)
    reg, _expected = standard_content(new_key(), new_key())
    for n in range(80):
        reg.push_image(f"many/repo-{n:02d}", "v1", f"img-{n}", size=1000 + n)
    reg.write_storage(tmp_path)
    threaded = []
    monkeypatch.setattr(StorageReader, "_walk_threaded",
                        lambda self, repos, shares: threaded.append(shares) or self.walk_repositories(repos))
    StorageReader(tmp_path).walk(disk_blocks_per_read=1e9)
    assert threaded == []
    StorageReader(tmp_path).walk(disk_blocks_per_read=-1.0)
    assert threaded == [storage.WORKERS]
