"""Generator `fstab-tmpfs`: the tmpfs under nginx's temp paths, sized from the largest layer.

Size: factor (2.0) x the largest layer, at least floor_bytes (2 GiB) when an image is over
large_image_bytes (500 MB), never smaller than it is now, rounded up to a whole MiB. Options:
the site's, plus noexec and nosuid. The fstab line is replaced (or added) and the live mount is
remounted in nginx's mount namespace (mount flags are per namespace; the size is shared).
"""

from __future__ import annotations

import math
from typing import Any

from .model import FileChange, MountChange, Plan, TextRemedy
from .site import Site, read_live

NAME = "fstab-tmpfs"
CHECKS = ("tmpfs.mounted", "tmpfs.size", "tmpfs.persistent")
MIB = 1024 * 1024
FLAGS = ("noexec", "nosuid")
NEGATION = {"noexec": "exec", "nosuid": "suid", "nodev": "dev"}


def required_bytes(largest_layer: int, largest_image: int, params: dict[str, Any], current: int = 0) -> int:
    """The tmpfs size the profile asks for, rounded up to a whole MiB, never below `current`."""
    need = float(params.get("factor", 2.0)) * largest_layer
    if largest_image > int(params.get("large_image_bytes", 524288000)):
        need = max(need, float(params.get("floor_bytes", 2147483648)))
    return max(math.ceil(need / MIB) * MIB, current)


def size_option(size: int) -> str:
    return f"{size // (1024 * MIB)}G" if size % (1024 * MIB) == 0 else f"{size // MIB}M"


def fstab_options(existing: list[str], size: int) -> list[str]:
    """Existing fstab options with size= replaced and noexec/nosuid present (exec/suid dropped)."""
    out = [o for o in existing if not o.startswith("size=") and o not in ("exec", "suid")]
    if not out:
        out = ["defaults"]
    out.insert(1 if out[0] == "defaults" else 0, f"size={size_option(size)}")
    for flag in FLAGS:
        if flag not in out:
            out.append(flag)
    return out


def rewrite_fstab(text: str, mountpoint: str, options: list[str]) -> str:
    """`text` with the tmpfs line for `mountpoint` replaced, or appended when there is none."""
    line = f"tmpfs {mountpoint} tmpfs {','.join(options)} 0 0"
    lines = text.splitlines()
    for index, existing in enumerate(lines):
        fields = existing.split()
        if len(fields) >= 3 and not existing.lstrip().startswith("#") and fields[1] == mountpoint:
            lines[index] = line
            break
    else:
        lines.append(f"# regaudit remediate ({NAME}): nginx temp paths on a sized tmpfs (tmpfs.persistent)")
        lines.append(line)
    return "\n".join(lines) + "\n"


def generate(site: Site, plan: Plan) -> None:
    failing = site.failing_ids()
    claimed = tuple(c for c in CHECKS if c in failing)
    if not claimed:
        return
    facts = site.value("host.tmpfs") or {}
    layout = site.value("storage.layout") or {}
    largest = int(((layout.get("largest_layer") or {}).get("bytes")) or 0)
    image = int(((layout.get("largest_image") or {}).get("bytes")) or 0)
    mounts = {(p.get("mount") or {}).get("mountpoint"): p for p in facts.get("paths") or [] if p.get("mount")}
    tmpfs = [m for m, p in mounts.items() if (p.get("mount") or {}).get("fstype") == "tmpfs"]
    if len(tmpfs) != 1 or len(mounts) != 1:
        plan.texts.append(TextRemedy(
            "tmpfs.mounted", tuple(str(p.get("path")) for p in facts.get("paths") or []),
            "Put nginx's proxy_temp_path and client_body_temp_path under one directory (e.g. /var/cache/nginx), "
            "add `tmpfs /var/cache/nginx tmpfs defaults,size=<2 x largest layer, >= 2G for images over 500 MB>,"
            "noexec,nosuid 0 0` to /etc/fstab, `mount /var/cache/nginx`, recreate the temp directories owned by "
            "nginx's user and reload nginx.", NAME))
        return
    mountpoint = str(tmpfs[0])
    mount = mounts[mountpoint]["mount"]
    current = int(mount.get("size_option_bytes") or mount.get("size_bytes") or 0)
    size = required_bytes(largest, image, site.params("tmpfs.size"), current)
    fstab_path = facts.get("fstab_path") or "/etc/fstab"
    live = read_live(fstab_path)
    if live is None:
        plan.notes.append(f"{NAME}: {fstab_path} is not readable here")
        return
    existing = next((e.get("options") or [] for e in mounts[mountpoint].get("fstab") or []), [])
    options = fstab_options(list(existing), size)
    text = rewrite_fstab(live.decode(), mountpoint, options)
    if text.encode() != live:
        plan.files.append(FileChange(path=fstab_path, generator=NAME, checks=claimed, content=text.encode(),
                                     note=f"tmpfs {mountpoint}: size {size_option(size)}, noexec, nosuid"))
    flags = set(mount.get("flags") or [])
    if size != current or not set(FLAGS) <= flags:
        undo = [f"size={mount.get('size_option') or size_option(current)}"]
        undo += [flag if flag in flags else NEGATION[flag] for flag in FLAGS]
        plan.mounts.append(MountChange(mountpoint=mountpoint, options=",".join([f"size={size_option(size)}",
                                                                                  *FLAGS]),
                                       undo=",".join(undo), ns_pid=facts.get("nginx_pid"), generator=NAME,
                                       checks=claimed))
    plan.expected |= set(claimed)
