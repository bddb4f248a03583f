"""registry.stale-uploads: incomplete uploads on disk older than the purge age in effect."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed, warned
from auditor.judge.units import format_duration, parse_duration
from auditor.model import Severity, Vantage

from ._config import PROBE as CONFIG_PROBE
from ._config import config_facts, effective

LAYOUT = "storage.layout"
GUIDE_AGE = 168 * 3600.0


def purge_age(config: dict[str, Any]) -> tuple[float, str]:
    """(seconds, why): the configured age when purging is enabled, else the guide's 168h."""
    enabled = effective(config, "storage.maintenance.uploadpurging.enabled")
    if enabled.value is not True:
        return GUIDE_AGE, f"purging is off ({enabled.describe()}): the guide's 168h applies"
    age = effective(config, "storage.maintenance.uploadpurging.age")
    seconds = parse_duration(age.value)
    if seconds is None:
        return GUIDE_AGE, f"{age.describe()} is not a duration: the guide's 168h applies"
    return seconds, f"purge age in effect: {age.describe()}"


def parse_startedat(text: str) -> dt.datetime | None:
    """RFC 3339 as the registry writes it (Go may add up to 9 fractional digits)."""
    raw = text.strip().replace("Z", "+00:00")
    if "." in raw:
        head, _, rest = raw.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        raw = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        stamp = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


@check(
    id="registry.stale-uploads",
    title="No incomplete upload is older than the purge age",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=(CONFIG_PROBE, LAYOUT),
    guide="Registry Configuration: storage.maintenance.uploadpurging (evidence that it works)",
    rationale="Abandoned uploads older than the purge age mean purging does not run (or is off): they "
    "fill the disk and may hold data never meant to be stored.",
    passes_when="no _uploads/<uuid>/startedat on disk is older than the purge age in effect "
    "(168h when purging is off)",
    remediation="Enable storage.maintenance.uploadpurging (age 168h, interval 24h, dryrun false), restart "
    "the registry; remove the listed _uploads/<uuid> directories while no push is running.",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
)
def stale_uploads(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    layout = ev[LAYOUT]
    limit, why = purge_age(facts["config"])
    root = str(layout.get("rootdirectory"))
    if not layout.get("exists"):
        yield passed(root, f"no registry layout under {root} yet: no uploads")
        return
    stale: dict[str, list[dict[str, Any]]] = {}
    unknown: list[dict[str, Any]] = []
    count = 0
    for upload in layout.get("uploads") or []:
        count += 1
        started = parse_startedat(str(upload.get("startedat") or ""))
        if started is None:
            unknown.append({"repository": upload["repository"], "upload": upload["uuid"],
                            "startedat": upload.get("startedat"), "error": upload.get("startedat_error")})
            continue
        age = (ev.now - started).total_seconds()
        if age > limit:
            stale.setdefault(str(upload["repository"]), []).append(
                {"upload": upload["uuid"], "startedat": upload["startedat"], "age": format_duration(age),
                 "age_seconds": int(age), "data_bytes": upload.get("data_bytes")})
    expected = f"no upload older than {format_duration(limit)} ({why})"
    for repo, items in sorted(stale.items()):
        ids = ", ".join(f"{i['upload']} ({i['age']} old)" for i in items)
        yield failed(repo, f"{len(items)} incomplete upload(s) older than {format_duration(limit)}: {ids}",
                     observed=items, expected=expected)
    for item in unknown:
        yield warned(str(item["repository"]), f"upload {item['upload']} has no readable startedat: its age "
                     "is unknown and the purger cannot judge it", observed=item, expected=expected)
    if not stale and not unknown:
        yield passed(root, f"{count} incomplete upload(s), none older than {format_duration(limit)} ({why})",
                     observed={"uploads": count}, expected=expected)
