"""Generator `file-permissions`: modes and owners of TLS keys, htpasswd files and configs.

Keys become 0600 root; configs lose group/other write and are owned by root; htpasswd files
lose every bit for others and are group-readable by Apache's group. Contents are never touched:
non-bcrypt htpasswd entries cannot be re-hashed (the passwords are unknown), so the plan lists
the users to reset and a script that resets them with `htpasswd -B`.
"""

from __future__ import annotations

import re
from typing import Any

from .model import Artifact, FileChange, Plan, TextRemedy
from .render import render
from .site import Site

NAME = "file-permissions"
KEY_MODES = ("0600", "0400")


def _apache_gid(site: Site) -> int | None:
    output = (((site.value("config.apache") or {}).get("apache2ctl") or {}).get("S") or {}).get("output") or ""
    match = re.search(r'^Group: name="[^"]*" id=(\d+)', output, re.M)
    return int(match.group(1)) if match else None


def _mode(item: dict[str, Any]) -> int:
    return int(str(item.get("mode") or "0"), 8)


def generate(site: Site, plan: Plan) -> None:
    failing = site.failing_ids()
    facts = site.value("files.stat") or {}
    seen: set[str] = set()
    if "files.tls-key" in failing:
        for item in facts.get("tls_keys") or []:
            if not item.get("exists") or item.get("path") in seen:
                continue
            mode = None if item.get("mode") in KEY_MODES else 0o600
            uid = None if item.get("uid") == 0 else 0
            if mode is not None or uid is not None:
                seen.add(item["path"])
                plan.files.append(FileChange(path=item["path"], generator=NAME, checks=("files.tls-key",),
                                             mode=mode, uid=uid, note="private key: 0600, owned by root"))
        plan.expected.add("files.tls-key")
    if "files.configs" in failing:
        for item in facts.get("configs") or []:
            if not item.get("exists") or item.get("path") in seen:
                continue
            current = _mode(item)
            mode = current & ~0o022 if current & 0o022 else None
            uid = None if item.get("uid") == 0 else 0
            if mode is not None or uid is not None:
                seen.add(item["path"])
                plan.files.append(FileChange(path=item["path"], generator=NAME, checks=("files.configs",),
                                             mode=mode, uid=uid, note="config: no group/other write, owned by root"))
        plan.expected.add("files.configs")
    if "files.htpasswd" in failing:
        _htpasswd(site, plan, facts, seen)


def _htpasswd(site: Site, plan: Plan, facts: dict[str, Any], seen: set[str]) -> None:
    gid = _apache_gid(site)
    weak_entries = False
    for item in facts.get("htpasswd") or []:
        if not item.get("exists"):
            continue
        path = item["path"]
        current = _mode(item)
        mode = (current & ~0o007) | 0o040 if current & 0o007 or not current & 0o040 else None
        new_gid = gid if gid is not None and item.get("gid") not in (gid,) and item.get("gid") != 0 else None
        if gid is not None and item.get("gid") == 0:
            new_gid = gid  # root-group file: Apache's workers could no longer read it at 0640
        if (mode is not None or new_gid is not None) and path not in seen:
            seen.add(path)
            plan.files.append(FileChange(path=path, generator=NAME, checks=("files.htpasswd",), mode=mode,
                                         gid=new_gid,
                                         note="htpasswd: not world-readable, readable by the web server's group"))
        weak = [e for e in item.get("entries") or [] if e.get("scheme") != "bcrypt"]
        if weak:
            weak_entries = True
            script = render("htpasswd-reset.sh.j2", NAME, ("files.htpasswd",), path=path, users=weak)
            plan.artifacts.append(Artifact(f"htpasswd/reset-{len(plan.artifacts)}.sh", script.encode(), NAME,
                                           ("files.htpasswd",), f"reset non-bcrypt users of {path}", 0o755))
            users = ", ".join(f"{e.get('user')} ({e.get('scheme')})" for e in weak)
            plan.texts.append(TextRemedy(
                "files.htpasswd", (path,),
                f"{path}: entries that are not bcrypt cannot be re-hashed (the passwords are unknown). Reset these "
                f"users with `htpasswd -B {path} USER` (it prompts; the generated htpasswd/reset-*.sh does it for "
                f"each): {users}.", NAME))
    if not weak_entries:
        plan.expected.add("files.htpasswd")
