"""storage.* checks: the storage filesystem's usage and what garbage collection would free."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, warned
from auditor.model import Severity, Vantage

GIB = 1 << 30


def _gib(value: int) -> str:
    return f"{value / GIB:.2f} GiB"


@check(
    id="storage.usage",
    title="The registry's storage filesystem has room",
    severity=Severity.MEDIUM,
    area="storage",
    vantage=Vantage.INSIDE,
    needs=("storage.filesystem",),
    guide="Monitoring and Alerting: storage usage",
    rationale="A full disk fails every push midway and can corrupt uploads; alert well before it happens.",
    passes_when="the filesystem holding the registry's root directory is under max_percent (85) full, "
    "computed as df does: used / (used + available)",
    remediation="Run garbage collection (read-only mode around `registry garbage-collect`), delete unused "
    "tags, or grow the filesystem; install the storage alert script.",
    generator="storage-alert",
    references=("NIST SP 800-190 4.2 (registry countermeasures: monitoring)",),
    params={"max_percent": 85},
)
def storage_usage(ev: Evidence, params: Params) -> Iterator[Outcome]:
    fs = ev["storage.filesystem"]
    used, avail = int(fs["used_bytes"]), int(fs["available_bytes"])
    usable = used + avail
    if usable <= 0:
        yield failed(str(fs["path"]), "filesystem reports no usable space", observed=fs)
        return
    percent = round(used * 100.0 / usable, 1)
    limit = float(params["max_percent"])
    observed = {"path": fs["path"], "source": fs["source"], "used_percent": percent, "used": _gib(used),
                "available": _gib(avail), "total": _gib(int(fs["total_bytes"]))}
    expected = f"< {params['max_percent']}% used"
    if percent >= limit:
        yield failed(str(fs["path"]), f"storage filesystem is {percent}% full ({_gib(avail)} available)",
                     observed=observed, expected=expected)
    else:
        yield passed(str(fs["path"]), f"storage filesystem is {percent}% full", observed=observed,
                     expected=expected)


@check(
    id="storage.reclaimable",
    title="Blobs no manifest references (what garbage collection would free)",
    severity=Severity.LOW,
    area="storage",
    vantage=Vantage.INSIDE,
    needs=("storage.layout",),
    guide="Garbage Collection",
    rationale="Deleted manifests leave their blobs on disk until garbage collection runs; a growing pile "
    "means GC is not scheduled, and deleted (perhaps vulnerable or leaked) layers stay servable by digest.",
    passes_when="the bytes of blobs no manifest revision references stay under reclaimable_warn_bytes "
    "(1 GiB); over it the result is warn, with the largest such blobs listed",
    remediation="Schedule the garbage-collection script (read-only mode, `registry garbage-collect <config>` "
    "without --delete-untagged on 2.8, read-only off).",
    generator="gc-script",
    params={"reclaimable_warn_bytes": GIB},
)
def storage_reclaimable(ev: Evidence, params: Params) -> Iterator[Outcome]:
    layout = ev["storage.layout"]
    root = str(layout.get("rootdirectory"))
    if not layout.get("exists"):
        yield passed(root, "no registry layout on disk yet: nothing to reclaim")
        return
    blobs = layout["blobs"]
    loose = int(blobs["unreferenced_bytes"])
    limit = int(params["reclaimable_warn_bytes"])
    problems = list(layout.get("problems") or [])
    observed = {"blobs": blobs["count"], "blob_bytes": blobs["bytes"],
                "unreferenced_count": blobs["unreferenced_count"], "unreferenced_bytes": loose,
                "largest_unreferenced": blobs["unreferenced"][:20], "layout_problems": problems}
    expected = f"< {limit} bytes ({_gib(limit)}) unreferenced"
    note = f" ({len(problems)} unreadable manifest(s): the figure may be high)" if problems else ""
    message = f"{blobs['unreferenced_count']} unreferenced blob(s), {loose} bytes ({_gib(loose)}){note}"
    if loose >= limit:
        yield warned(root, message + ": run garbage collection", observed=observed, expected=expected)
    else:
        yield passed(root, message, observed=observed, expected=expected)
