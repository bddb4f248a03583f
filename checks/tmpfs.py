"""tmpfs.* checks: nginx's temp paths on a sized, noexec/nosuid tmpfs that survives a reboot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, skipped
from auditor.model import Severity, Vantage

PROBE = "host.tmpfs"
LAYOUT = "storage.layout"
CONTENT = "registry.content"
REQUIRED_FLAGS = ("noexec", "nosuid")
GUIDE = "tmpfs Cache Tuning (docs/guide-notes.md#nginx-temp-paths-on-tmpfs: both temp paths)"
MIB = 1 << 20


def _mib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / MIB:.0f} MiB"


def _subject(row: dict[str, Any]) -> str:
    return f"{row['directive']} {row['path']}"


def _by_mount(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("mount"):
            groups.setdefault(str(row["mount"]["mountpoint"]), []).append(row)
    return groups


@check(
    id="tmpfs.mounted",
    title="nginx's temp paths are on a noexec, nosuid tmpfs",
    severity=Severity.MEDIUM,
    area="tmpfs",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide=GUIDE,
    rationale="Pulls buffer in proxy_temp_path and pushes in client_body_temp_path: on disk they wear it and "
    "leave layer data behind; an exec-able temp path lets uploaded content be executed.",
    passes_when="proxy_temp_path and client_body_temp_path are on a tmpfs mounted with noexec and nosuid, "
    "as seen in nginx's own mount namespace (/proc/<nginx pid>/mountinfo)",
    remediation="Mount a tmpfs with noexec,nosuid on the temp directory and point both proxy_temp_path and "
    "client_body_temp_path at it; reload nginx.",
    generator="fstab-tmpfs",
    references=("CIS Linux Benchmark 1.1 (noexec/nosuid on temporary filesystems)",),
)
def tmpfs_mounted(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    for row in facts["paths"]:
        mount = row.get("mount")
        if mount is None:
            yield failed(_subject(row), f"no mount covers {row['path']} in {facts['view']}",
                         observed=None, expected="tmpfs with noexec,nosuid")
            continue
        observed = {"mountpoint": mount["mountpoint"], "fstype": mount["fstype"], "options": mount["options"],
                    "view": facts["view"], "path_exists": row.get("exists")}
        expected = {"fstype": "tmpfs", "flags": list(REQUIRED_FLAGS)}
        problems = []
        if mount["fstype"] != "tmpfs":
            problems.append(f"on {mount['fstype']} ({mount['mountpoint']}), not tmpfs")
        missing = [f for f in REQUIRED_FLAGS if f not in mount["flags"]]
        if missing:
            problems.append(f"mounted without {', '.join(missing)}")
        if problems:
            yield failed(_subject(row), "; ".join(problems), observed=observed, expected=expected)
        else:
            yield passed(_subject(row), f"tmpfs at {mount['mountpoint']} with noexec,nosuid",
                         observed=observed, expected=expected)


def largest(ev: Evidence) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(largest layer, largest image, note): from the storage layout (layers and image totals, every
    tag, indexes followed); else from the content walk (`registry.content`, API or storage), which
    knows layers only, so the floor is then judged on the largest layer. Raises when neither exists."""
    layout = ev.get(LAYOUT)
    content = ev.get(CONTENT)
    walked = (content or {}).get("largest_layer") if isinstance(content, dict) else None
    if isinstance(layout, dict) and layout.get("exists") is not False:
        layer = dict(layout.get("largest_layer") or {})
        if walked and int(walked.get("size") or 0) > int(layer.get("bytes") or 0):
            layer = {"bytes": int(walked["size"]), "repository": walked.get("repo"), "digest": walked.get("digest"),
                     "source": CONTENT}
        return layer, dict(layout.get("largest_image") or {}), ""
    if isinstance(content, dict):
        layer = ({"bytes": int(walked.get("size") or 0), "repository": walked.get("repo"),
                  "digest": walked.get("digest"), "source": CONTENT} if walked else {})
        return layer, {}, "image totals unknown (registry.content lists layers only): floor judged on the layer"
    ev[LAYOUT]  # raises: error (or skip) with the layout probe's reason
    return {}, {}, ""


@check(
    id="tmpfs.size",
    title="nginx's temp tmpfs is large enough for the largest layer",
    severity=Severity.HIGH,
    area="tmpfs",
    vantage=Vantage.INSIDE,
    needs=(PROBE, LAYOUT, CONTENT),
    guide=GUIDE,
    rationale="A layer larger than the temp tmpfs fails mid-transfer (nginx cannot buffer it), breaking "
    "pushes and pulls of exactly the biggest images.",
    passes_when="the tmpfs is at least factor (2.0) x the largest layer in the registry, and at least "
    "floor_bytes (2 GiB) when any image is over large_image_bytes (500 MB); the largest layer is measured "
    "from every tag's manifest, index manifests followed to every platform manifest",
    remediation="Grow the tmpfs (size= in the mount and the fstab entry) to the required size; remount.",
    generator="fstab-tmpfs",
    params={"factor": 2.0, "floor_bytes": 2147483648, "large_image_bytes": 524288000},
)
def tmpfs_size(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    layer, image, note = largest(ev)
    layer_bytes = int(layer.get("bytes") or 0)
    image_bytes = int(image.get("bytes") or 0)
    factor = float(params["factor"])
    required = int(factor * layer_bytes)
    reasons = [f"{factor:g} x largest layer {_mib(layer_bytes)} ({layer.get('repository')}:{layer.get('tag')})"
               if layer else "the registry holds no image yet (no layer to size for)"]
    if max(image_bytes, layer_bytes) > int(params["large_image_bytes"]):
        required = max(required, int(params["floor_bytes"]))
        big = image if image_bytes >= layer_bytes else layer
        reasons.append(f"floor {_mib(int(params['floor_bytes']))}: image {big.get('repository')}:"
                       f"{big.get('tag')} is over {_mib(int(params['large_image_bytes']))}")
    if note:
        reasons.append(note)
    for mountpoint, rows in sorted(_by_mount(facts["paths"]).items()):
        mount = rows[0]["mount"]
        subject = f"{mountpoint} ({', '.join(r['directive'] for r in rows)})"
        if mount["fstype"] != "tmpfs":
            yield skipped(subject, f"{mountpoint} is {mount['fstype']}, not a tmpfs (tmpfs.mounted fails)")
            continue
        size = mount.get("size_bytes")
        observed = {"mountpoint": mountpoint, "size_bytes": size, "size": _mib(size),
                    "size_option": mount.get("size_option"), "largest_layer": layer or None,
                    "largest_image": image or None}
        expected = {"min_bytes": required, "min": _mib(required), "because": reasons}
        if size is None:
            yield failed(subject, "tmpfs size unknown (statvfs failed, no size= option)", observed=observed,
                         expected=expected)
        elif size < required:
            yield failed(subject, f"tmpfs is {_mib(size)}, needs at least {_mib(required)}: " + "; ".join(reasons),
                         observed=observed, expected=expected)
        else:
            yield passed(subject, f"tmpfs is {_mib(size)} >= {_mib(required)}: " + "; ".join(reasons),
                         observed=observed, expected=expected)
    if not _by_mount(facts["paths"]):
        yield failed("nginx temp paths", "no mount found for any temp path", observed=facts["paths"])


@check(
    id="tmpfs.persistent",
    title="The temp tmpfs is in fstab with the same options",
    severity=Severity.LOW,
    area="tmpfs",
    vantage=Vantage.INSIDE,
    needs=(PROBE,),
    guide=GUIDE,
    rationale="A tmpfs mounted by hand disappears at the next reboot: nginx then buffers on disk again, "
    "or fails when the directory is missing.",
    passes_when="the fstab (--fstab, default /etc/fstab) has a tmpfs entry for the mount point with the "
    "live mount's size and the same noexec/nosuid/nodev/ro flags",
    remediation="Add `tmpfs <mountpoint> tmpfs defaults,size=<size>,noexec,nosuid 0 0` to /etc/fstab.",
    generator="fstab-tmpfs",
)
def tmpfs_persistent(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = ev[PROBE]
    groups = _by_mount(facts["paths"])
    if not groups:
        yield failed("nginx temp paths", "no mount found for any temp path", observed=facts["paths"])
        return
    for mountpoint, rows in sorted(groups.items()):
        mount = rows[0]["mount"]
        subject = mountpoint
        if mount["fstype"] != "tmpfs":
            yield skipped(subject, f"{mountpoint} is {mount['fstype']}, not a tmpfs (tmpfs.mounted fails)")
            continue
        declared = _container_tmpfs(facts, mountpoint)
        if declared is not None:
            yield _judge_container_tmpfs(facts, subject, mount, declared)
            continue
        if not facts.get("fstab_readable"):
            yield failed(subject, f"fstab {facts['fstab_path']} is not readable", observed=None,
                         expected=f"a tmpfs entry for {mountpoint}")
            continue
        live = {"flags": sorted(mount["flags"]), "size_bytes": mount.get("size_option_bytes"),
                "size_option": mount.get("size_option")}
        entries = rows[0].get("fstab") or []
        if not entries:
            yield failed(subject, f"no entry for {mountpoint} in {facts['fstab_path']}: the mount is lost at reboot",
                         observed={"live": live, "fstab": None}, expected=f"tmpfs entry with {live}")
            continue
        entry = entries[-1]
        problems = []
        if entry["vfstype"] != "tmpfs":
            problems.append(f"fstab type is {entry['vfstype']}, not tmpfs")
        if sorted(entry["flags"]) != live["flags"]:
            problems.append(f"fstab flags {sorted(entry['flags'])} differ from the live mount's {live['flags']}")
        if live["size_bytes"] is not None and entry.get("size_bytes") != live["size_bytes"]:
            problems.append(f"fstab size {entry.get('size_bytes')} differs from the live size {live['size_bytes']}")
        observed = {"live": live, "fstab": entry, "fstab_path": facts["fstab_path"]}
        if problems:
            yield failed(subject, "; ".join(problems), observed=observed, expected="the live mount's options")
        else:
            yield passed(subject, f"{facts['fstab_path']} line {entry['line']} matches the live mount",
                         observed=observed)


def _container_tmpfs(facts: dict[str, Any], mountpoint: str) -> dict[str, Any] | None:
    """The container's own tmpfs declaration (`--tmpfs`, `--mount type=tmpfs`) for `mountpoint`."""
    container = facts.get("container") or {}
    return next((t for t in container.get("tmpfs") or [] if t.get("destination") == mountpoint), None)


def _judge_container_tmpfs(facts: dict[str, Any], subject: str, mount: dict[str, Any],
                           declared: dict[str, Any]) -> Outcome:
    """A container's tmpfs is recreated by the engine at every start: persistent when the declared
    options carry the live mount's noexec/nosuid/nodev flags."""
    name = (facts.get("container") or {}).get("name")
    options = effective_tmpfs_flags(str(declared.get("options") or ""), str(declared.get("how")))
    live = sorted(f for f in mount["flags"] if f in ("noexec", "nosuid", "nodev"))
    missing = [f for f in live if f not in options]
    observed = {"container": name, "declared": declared, "live_flags": sorted(mount["flags"]),
                "live_size": mount.get("size_option")}
    if missing:
        return failed(subject, f"container {name} declares {declared.get('how')} {subject} without {missing}: "
                      "a re-created container loses them", observed=observed,
                      expected=f"{declared.get('how')} {subject} with {live}")
    return passed(subject, f"container {name} declares {declared.get('how')} {subject}:{declared.get('options')} "
                  "(the engine mounts it at every start)", observed=observed)


ENGINE_TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev")  # what the Docker Engine applies to every --tmpfs


def effective_tmpfs_flags(options: str, how: str) -> set[str]:
    """The flags a container's tmpfs gets: for `--tmpfs`, the engine's defaults (noexec, nosuid,
    nodev) with the declared options applied over them (`exec` lifts noexec, and so on)."""
    flags = set(ENGINE_TMPFS_DEFAULTS) if how == "--tmpfs" else set()
    for option in (o.strip() for o in options.split(",") if o.strip()):
        if option in ("exec", "suid", "dev"):
            flags.discard("no" + option)
        elif option in ENGINE_TMPFS_DEFAULTS:
            flags.add(option)
    return flags
