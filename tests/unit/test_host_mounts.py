"""Mounts: mountinfo and fstab parsing, path resolution, and the tmpfs.* checks on a real tmpfs
mounted for the test (we are root; it is unmounted afterwards)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.checkapi import ProbeRecord
from auditor.host import mounts
from auditor.model import Status
from auditor.probes.tmpfs import describe, temp_paths

from .helpers import judge

MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 22 0:26 / /var/lib/nginx rw,nosuid,nodev,noexec,relatime shared:12 - tmpfs tmpfs rw,size=2097152k,mode=755
31 30 0:27 / /var/lib/nginx/proxy rw,nosuid,relatime shared:13 - tmpfs tmpfs rw,size=65536k
32 22 0:28 / /mnt/with\040space rw,relatime - tmpfs none rw
33 30 0:29 / /var/lib/nginx/proxy rw,nosuid,nodev,noexec,relatime shared:14 - tmpfs tmpfs rw,size=4194304k
"""


def test_mountinfo_fields_escapes_and_flags() -> None:
    table = mounts.parse_mountinfo(MOUNTINFO)
    assert [m.mountpoint for m in table][3] == "/mnt/with space"
    nginx = table[1]
    assert nginx.fstype == "tmpfs" and nginx.flags == ["noexec", "nosuid", "nodev"]
    assert nginx.super_option("size") == "2097152k"


def test_deepest_and_last_stacked_mount_wins() -> None:
    table = mounts.parse_mountinfo(MOUNTINFO)
    assert mounts.mount_for(table, "/var/lib/nginx/body").mount_id == 30  # type: ignore[union-attr]
    assert mounts.mount_for(table, "/var/lib/nginx/proxy/1/2").mount_id == 33  # type: ignore[union-attr]
    assert mounts.mount_for(table, "/var/lib/nginxother").mount_id == 22  # type: ignore[union-attr]


def test_fstab_and_sizes() -> None:
    (entry,) = mounts.parse_fstab("# c\n\ntmpfs  /var/lib/nginx  tmpfs  defaults,size=2G,noexec,nosuid 0 0\n")
    assert entry.file == "/var/lib/nginx" and entry.flags == ["noexec", "nosuid"] and entry.line == 3
    assert mounts.size_bytes(entry.option("size")) == 2 << 30
    assert mounts.size_bytes("65536k") == 64 << 20
    assert mounts.size_bytes("50%", 8 << 30) == 4 << 30
    assert mounts.size_bytes("lots") is None


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "cache"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,noexec,nosuid,mode=0755", "tmpfs", str(point)], check=True)
    try:
        (point / "proxy").mkdir()
        (point / "body").mkdir()
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def nginx_facts(point: Path) -> dict:
    return {"proxy_temp_path": str(point / "proxy"), "client_body_temp_path": str(point / "body"),
            "registry_servers": []}


def layout(layer: int, image: int) -> dict:
    return {"exists": True, "rootdirectory": "/x", "largest_layer": {"bytes": layer, "repository": "r", "tag": "t"},
            "largest_image": {"bytes": image, "repository": "r", "tag": "t"}}


def evidence(point: Path, fstab: str | None, layer: int = 1 << 20, image: int = 2 << 20) -> dict[str, ProbeRecord]:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    facts = describe(temp_paths(nginx_facts(point)), mountinfo, "test", "/", fstab, "/test/fstab", 8 << 30)
    return {"host.tmpfs": ProbeRecord("host.tmpfs", "ok", facts),
            "storage.layout": ProbeRecord("storage.layout", "ok", layout(layer, image))}


def test_real_tmpfs_passes_all_three(tmpfs: Path) -> None:
    fstab = f"tmpfs {tmpfs} tmpfs defaults,size=8M,noexec,nosuid 0 0\n"
    ev = evidence(tmpfs, fstab)
    for check_id in ("tmpfs.mounted", "tmpfs.size", "tmpfs.persistent"):
        results = judge(check_id, ev)
        assert results and all(r.status is Status.PASS for r in results), (check_id, results)
    (size,) = judge("tmpfs.size", ev)
    assert size.observed["size_bytes"] == 8 << 20


def test_real_tmpfs_too_small_for_the_largest_layer(tmpfs: Path) -> None:
    (result,) = judge("tmpfs.size", evidence(tmpfs, None, layer=5 << 20, image=6 << 20))
    assert result.status is Status.FAIL and "needs at least 10 MiB" in result.message


def test_floor_applies_when_an_image_is_over_500_mb(tmpfs: Path) -> None:
    (result,) = judge("tmpfs.size", evidence(tmpfs, None, layer=1 << 20, image=600 << 20))
    assert result.status is Status.FAIL and result.expected["min_bytes"] == 2 << 30


def test_fstab_missing_or_different(tmpfs: Path) -> None:
    (missing,) = judge("tmpfs.persistent", evidence(tmpfs, "# nothing\n"))
    assert missing.status is Status.FAIL and "lost at reboot" in missing.message
    (other,) = judge("tmpfs.persistent", evidence(tmpfs, f"tmpfs {tmpfs} tmpfs defaults,size=16M,nosuid 0 0\n"))
    assert other.status is Status.FAIL
    assert "flags ['nosuid'] differ" in other.message and "size 16777216 differs" in other.message


def test_a_temp_path_on_disk_fails_mounted() -> None:
    disk = Path(__file__).resolve().parent / "not-a-temp-dir"
    table = mounts.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    under = mounts.mount_for(table, str(disk))
    if under is None or under.fstype == "tmpfs":
        pytest.skip("the repository itself is on a tmpfs here")
    ev = evidence(disk, None)
    results = judge("tmpfs.mounted", ev)
    assert results and all(r.status is Status.FAIL and "not tmpfs" in r.message for r in results)
    assert {r.status for r in judge("tmpfs.size", ev)} == {Status.SKIP}


def test_exec_tmpfs_fails_mounted(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "exec"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], check=True)
    try:
        results = judge("tmpfs.mounted", evidence(point, None))
    finally:
        subprocess.run(["umount", str(point)], check=True)
    assert results and all(r.status is Status.FAIL and "without noexec, nosuid" in r.message for r in results)


def test_largest_layer_from_the_content_walk_when_the_layout_is_unavailable(tmpfs: Path) -> None:
    ev = evidence(tmpfs, None)
    ev["storage.layout"] = ProbeRecord("storage.layout", "not_applicable", reason="storage driver is 's3'")
    ev["registry.content"] = ProbeRecord("registry.content", "ok", {
        "source": "api", "largest_layer": {"size": 5 << 20, "repo": "big/app", "digest": "sha256:" + "a" * 64}})
    (result,) = judge("tmpfs.size", ev)
    assert result.status is Status.FAIL and "big/app" in result.message
    assert "floor judged on the layer" in result.message
    del ev["registry.content"]
    (skip,) = judge("tmpfs.size", ev)
    assert skip.status is Status.SKIP and "s3" in skip.message


def test_symlinked_temp_path_resolves_inside_the_process_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "mnt" / "cache" / "proxy").mkdir(parents=True)
    (root / "var" / "lib").mkdir(parents=True)
    os.symlink("/mnt/cache", root / "var" / "lib" / "nginx")  # absolute: relative to the process root
    os.symlink("../mnt/./cache", root / "mnt" / "alias")  # relative: to the link's directory
    assert mounts.resolve_in_root(str(root), "/var/lib/nginx/proxy") == "/mnt/cache/proxy"
    assert mounts.resolve_in_root(str(root), "/mnt/alias/proxy") == "/mnt/cache/proxy"
    assert mounts.resolve_in_root(str(root), "/var/lib/nginx/missing/x") == "/mnt/cache/missing/x"
    info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:50 / /mnt/cache rw,nosuid,noexec - tmpfs tmpfs rw,size=1024k\n"
    facts = describe([{"directive": "proxy_temp_path", "path": "/var/lib/nginx/proxy"}], info, "test", str(root),
                     None, "/etc/fstab", None)
    (row,) = facts["paths"]
    assert row["resolved"] == "/mnt/cache/proxy" and row["mount"]["mountpoint"] == "/mnt/cache"
    assert row["exists"] is True


def test_a_tmpfs_in_another_mount_namespace_is_seen_through_that_process(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    point = tmp_path / "private"
    (point / "proxy").mkdir(parents=True)
    script = (f"mount -t tmpfs -o size=3m,noexec,nosuid tmpfs {point} && mkdir {point}/proxy && "
              "echo ready && exec sleep 30")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        pid = proc.pid
        rows = [{"directive": "proxy_temp_path", "path": str(point / "proxy")}]
        theirs = describe(rows, Path(f"/proc/{pid}/mountinfo").read_text(), "nginx", f"/proc/{pid}/root",
                          None, "/etc/fstab", None)
        ours = describe(rows, Path("/proc/self/mountinfo").read_text(), "self", "/", None, "/etc/fstab", None)
    finally:
        proc.kill()
        proc.wait()
    (row,) = theirs["paths"]
    assert row["mount"]["fstype"] == "tmpfs" and row["mount"]["size_bytes"] == 3 << 20
    assert row["mount"]["flags"] == ["noexec", "nosuid"]
    assert ours["paths"][0]["mount"]["mountpoint"] != str(point)  # invisible from the auditor's namespace
