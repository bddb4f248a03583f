"""`--rescan-stale`: run Trivy for the tags whose scan report is missing, stale or of another digest.

Contract: `plan(content, scan_facts, max_age_hours, now)` lists the tags to rescan with the
reason; `await rescan(plan, ...)` runs `trivy image --format json` for each (by digest, so the
report is of exactly what the tag points to), writes the report where the guide's scan script
names it (`${repo////_}_${tag}.json`, written atomically: a temporary file in the scan
directory, then rename), and returns what happened per tag. Registry credentials reach Trivy
through its environment (TRIVY_USERNAME / TRIVY_PASSWORD), never its arguments; the CA bundle
through SSL_CERT_FILE; the site's other TRIVY_* settings pass through. When Trivy is not
installed, `find_trivy` says so and nothing runs. This writes to the scan directory only: the
registry is read (pulled), never changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.credentials import Credentials
from auditor.judge.scans import parse_time, scan_filename

TRIVY_TIMEOUT = 600.0
MAX_PARALLEL = 2


@dataclass(frozen=True)
class Stale:
    repo: str
    tag: str
    digest: str
    file: str
    reason: str


def find_trivy(explicit: str | None = None) -> tuple[str | None, str]:
    """(path of the trivy binary, "") or (None, why it cannot run)."""
    if explicit:
        path = shutil.which(explicit)
        return (path, "") if path else (None, f"--trivy {explicit} is not an executable")
    path = shutil.which("trivy")
    return (path, "") if path else (None, "trivy is not installed (not on PATH)")


def plan(content: Mapping[str, Any], scan_facts: Mapping[str, Any], max_age_hours: float,
         now: dt.datetime) -> list[Stale]:
    """The tags whose report is missing, unreadable, older than `max_age_hours`, or of another
    digest. Tags whose report file name collides with another tag's are left alone (rescanning
    one would overwrite the other's report)."""
    reports: Mapping[str, Any] = scan_facts.get("reports") or {}
    readable = [t for t in content.get("tags") or [] if t.get("digest") and not t.get("error")]
    users: dict[str, int] = {}
    for tag in readable:
        name = scan_filename(tag["repo"], tag["tag"])
        users[name] = users.get(name, 0) + 1
    out: list[Stale] = []
    for tag in readable:
        name = scan_filename(tag["repo"], tag["tag"])
        if users[name] > 1:
            continue
        reason = _stale_reason(reports.get(name), str(tag["digest"]), max_age_hours, now)
        if reason:
            out.append(Stale(tag["repo"], tag["tag"], str(tag["digest"]), name, reason))
    return out


def _stale_reason(report: Mapping[str, Any] | None, digest: str, max_age_hours: float, now: dt.datetime) -> str:
    if report is None:
        return "no report"
    if report.get("parse_error"):
        return "report unreadable"
    created = parse_time(report.get("created_at")) or parse_time(report.get("mtime"))
    if created is None:
        return "report has no time"
    if now - created > dt.timedelta(hours=max_age_hours):
        return f"report older than {max_age_hours:g}h"
    digests = [str(d).rsplit("@", 1)[-1] for d in report.get("repo_digests") or []]
    if digest not in digests:
        return "report is of another digest"
    return ""


async def rescan(stale: list[Stale], *, trivy: str, registry_host: str, scan_dir: str,
                 credentials: Credentials | None, ca_bundle: str | None, deadline: float) -> list[dict[str, Any]]:
    """Run trivy for every stale tag (at most MAX_PARALLEL at once, each within the deadline)."""
    env = dict(os.environ)  # the site's TRIVY_* settings (cache, DB mirror, offline) stay
    if credentials is not None:
        env["TRIVY_USERNAME"] = credentials.username
        env["TRIVY_PASSWORD"] = credentials.password.reveal()
    if ca_bundle:
        env["SSL_CERT_FILE"] = ca_bundle
    slots = asyncio.Semaphore(MAX_PARALLEL)
    loop = asyncio.get_running_loop()

    async def one(item: Stale) -> dict[str, Any]:
        async with slots:
            remaining = deadline - loop.time()
            entry: dict[str, Any] = {"repo": item.repo, "tag": item.tag, "digest": item.digest, "file": item.file,
                                     "reason": item.reason}
            if remaining <= 5:
                return {**entry, "result": "not run", "error": "no time left before the audit deadline"}
            return {**entry, **await _run_trivy(trivy, f"{registry_host}/{item.repo}@{item.digest}",
                                                Path(scan_dir) / item.file, env, min(TRIVY_TIMEOUT, remaining))}

    return list(await asyncio.gather(*(one(item) for item in stale)))


def trivy_failure(code: int | None, stderr: str) -> str:
    """One line saying why trivy failed: its FATAL line, and what to do when it is the database."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    fatal = next((ln for ln in lines if "FATAL" in ln), lines[-1] if lines else "")
    fatal = fatal.split("\tFatal error\t", 1)[-1].split("FATAL", 1)[-1].strip()
    if "failed to download vulnerability DB" in stderr or "DB error" in stderr:
        return (f"trivy exited {code}: it could not get its vulnerability database (offline? point "
                "TRIVY_DB_REPOSITORY at a mirror, or pre-fill TRIVY_CACHE_DIR and set TRIVY_SKIP_DB_UPDATE=true; "
                f"TRIVY_SCANNERS=secret needs no database): {fatal[:200]}")
    return f"trivy exited {code}: {fatal[:300]}"


async def _run_trivy(trivy: str, reference: str, destination: Path, env: dict[str, str],
                     timeout: float) -> dict[str, Any]:
    fd, temp = tempfile.mkstemp(prefix=".regaudit-rescan-", suffix=".json", dir=destination.parent)
    os.close(fd)
    try:
        proc = await asyncio.create_subprocess_exec(
            trivy, "image", "--quiet", "--format", "json", "--output", temp, reference,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=env)
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return {"result": "failed", "error": f"trivy did not finish within {timeout:.0f}s"}
        if proc.returncode != 0 or os.path.getsize(temp) == 0:
            return {"result": "failed", "error": trivy_failure(proc.returncode, stderr.decode("utf-8", "replace"))}
        os.chmod(temp, 0o644)
        os.replace(temp, destination)
        return {"result": "rescanned"}
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
