"""One tag's verdict, through the engine: the content checks and the profile of an audit.

Contract: `ContentJudge.judge(keys)` reads the named tags' facts the way the audit's walk does
(`Walker.tag_facts` through the registry API, or `StorageReader.tag_facts` on the filesystem
storage), gathers the rest of the content evidence with the installed probes (`signatures.trust`,
`scans.reports`: the real ones) through the engine's `Gatherer`, and judges with
`runner.judge_all` every selected content check under the profile. `walk()` is the
reconciliation: the real `registry.content` probe over the whole registry, judged the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from auditor.checkapi import Check, ProbeRecord
from auditor.credentials import Credentials
from auditor.errors import ProbeError
from auditor.gather import Gatherer
from auditor.model import Result, Status, Vantage
from auditor.probeapi import Probe, ProbeContext
from auditor.profile import Profile
from auditor.runner import Selection, judge_all

from .store import Verdict

CONTENT = "registry.content"
CONTENT_VANTAGE = frozenset({Vantage.CONTENT})
GRACE_CHECK = "signatures.present"   # where the profile sets the grace period (param grace_minutes)
DEFAULT_GRACE_MINUTES = 10.0


def content_checks(checks: Mapping[str, Check], profile: Profile) -> list[Check]:
    """The content-vantage checks the profile selects (signatures.*, scans.* and any plugin's)."""
    return [c for c in Selection(profile).apply(checks) if c.meta.vantage is Vantage.CONTENT]


def grace_seconds(checks: Mapping[str, Check], profile: Profile) -> float:
    """The profile's grace period: params.signatures.present.grace_minutes (default 10)."""
    item = checks.get(GRACE_CHECK)
    params = profile.params_for(item.meta) if item is not None else {}
    return float(params.get("grace_minutes", DEFAULT_GRACE_MINUTES)) * 60.0


def verdicts_of(results: Iterable[Result], subjects: Iterable[str]) -> dict[str, tuple[str, str, list[dict[str, Any]]]]:
    """{subject: (state, message, findings)}: fail when a check fails, error when one cannot decide."""
    wanted = set(subjects)
    found: dict[str, list[Result]] = {s: [] for s in wanted}
    for result in results:
        if result.subject in found:
            found[result.subject].append(result)
    out = {}
    for where, items in found.items():
        bad = [r for r in items if r.status in (Status.FAIL, Status.ERROR)]
        findings = [{"check": r.check_id, "status": r.status.value, "severity": r.severity.label,
                     "message": r.message} for r in sorted(bad, key=lambda r: r.check_id)]
        if not items:
            out[where] = ("error", "no content check judged this tag", findings)
        elif any(r.status is Status.FAIL for r in bad):
            out[where] = ("fail", "; ".join(f"{f['check']}: {f['message']}" for f in findings if f["status"] == "fail"),
                          findings)
        elif bad:
            out[where] = ("error", "; ".join(f"{f['check']}: {f['message']}" for f in findings), findings)
        else:
            out[where] = ("pass", f"{len(items)} content check result(s) pass", findings)
    return out


class ContentJudge:
    """Judges tags with the engine. Holds one keep-alive HTTP pool for the API source."""

    def __init__(self, checks: Mapping[str, Check], probes: Mapping[str, Probe], target: Any,
                 credentials: Credentials | None, profile: Profile) -> None:
        self.checks = checks
        self.probes = dict(probes)
        self.target = target
        self.credentials = credentials
        self.profile = profile
        self.chosen = content_checks(checks, profile)
        self.needs = sorted({n for c in self.chosen for n in c.meta.needs})
        self.storage_root = target.path("storage_root")
        self._fetcher: Any = None
        self._auth: Any = None
        self._token_client: Any = None

    # -- the tags' facts ------------------------------------------------------------------
    async def _api_facts(self, keys: list[tuple[str, str]]) -> dict[str, Any]:
        from auditor.content.auth import RegistryAuth
        from auditor.content.transport import PoolFetcher
        from auditor.content.walker import Walker, WalkOptions
        from auditor.httpclient import make_client, ssl_context

        base = str(self.target.url)
        if self._fetcher is None:
            ca_bundle = self.target.path("ca_bundle")
            self._fetcher = PoolFetcher(lambda: ssl_context(ca_bundle), max_connections=8)
            self._token_client = make_client(ca_bundle=ca_bundle, max_connections=2)
            self._auth = RegistryAuth(self._token_client, self.credentials, base)
        loop = asyncio.get_running_loop()
        options = WalkOptions(concurrency=8, deadline=loop.time() + 60.0,
                              signature_repository=self.target.options.get("signature_repository"))
        walker = Walker(self._fetcher, base, self._auth, options)  # a new walker: no digest cache across events
        await walker._list_signature_repository()
        tagsets: dict[str, frozenset[str]] = {}
        for repo in sorted({r for r, _ in keys}):
            names: list[str] = []
            try:
                async for page in walker.pages(f"/v2/{repo}/tags/list", {"n": 1000}, "tags",
                                               f"repository:{repo}:pull", "tags"):
                    names.extend(page)
            except ProbeError:  # no tag list (a deleted repository): the manifest GETs say what is left
                names = []
            tagsets[repo] = frozenset(names)
        facts = await asyncio.gather(*(walker.tag_facts(r, t, tagsets[r]) for r, t in keys))
        hosts = [self.target.host or ""]
        if self.target.port not in (None, 443, 80):
            hosts.append(f"{self.target.host}:{self.target.port}")
        return {"source": "api", "registry": base, "tags": list(facts), "hosts": [h for h in hosts if h]}

    def _storage_facts(self, keys: list[tuple[str, str]]) -> dict[str, Any]:
        from auditor.content.storage import StorageReader

        reader = StorageReader(str(self.storage_root), self.target.options.get("signature_repository"))
        out = []
        for repo, tag in keys:
            tagset = frozenset(reader.tags(repo))
            if tag not in tagset:
                out.append({"repo": repo, "tag": tag, "error": "tag not found in storage"})
                continue
            out.append(reader.tag_facts(repo, tag, tagset))
        hosts = [h for h in (self.target.host,) if h]
        if self.target.host and self.target.port not in (None, 443, 80):
            hosts.append(f"{self.target.host}:{self.target.port}")
        return {"source": "storage", "registry": str(self.storage_root), "tags": out, "hosts": hosts}

    async def tag_facts(self, keys: list[tuple[str, str]]) -> dict[str, Any]:
        if self.storage_root and Path(self.storage_root).is_dir():
            return await asyncio.to_thread(self._storage_facts, keys)
        return await self._api_facts(keys)

    # -- judging --------------------------------------------------------------------------
    async def _gather(self, content: Probe | None) -> dict[str, ProbeRecord]:
        probes = dict(self.probes)
        if content is not None:
            probes[CONTENT] = content
        gatherer = Gatherer(probes, self.target, self.credentials, 3600.0 if content is None else 120.0)
        return await gatherer.gather(self.needs)

    def _judge(self, records: Mapping[str, ProbeRecord], subjects: list[str]) -> tuple[list[Result], dict]:
        now = dt.datetime.now(dt.UTC)
        results = judge_all(self.chosen, records, self.profile, CONTENT_VANTAGE, now)
        return results, verdicts_of(results, subjects)

    async def judge(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Verdict]:
        """Verdicts of the named (repository, tag) pairs; a tag the registry no longer has is `gone`."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        facts = await self.tag_facts(wanted)

        async def provide(ctx: ProbeContext) -> Any:
            return facts

        records = await self._gather(Probe(CONTENT, provide, 120.0, "the tags named by the event"))
        _, by_subject = self._judge(records, [f"{r}:{t}" for r, t in wanted])
        out: dict[tuple[str, str], Verdict] = {}
        for fact in facts["tags"]:
            key = (fact["repo"], fact["tag"])
            state, message, findings = by_subject.get(f"{key[0]}:{key[1]}", ("error", "not judged", []))
            if (fact.get("error") and "not found" in str(fact.get("error"))) or _manifest_unknown(fact):
                state, message = "gone", str(fact.get("error"))
            out[key] = Verdict(str(fact.get("digest") or ""), state, message, findings)
        return out

    async def walk(self) -> tuple[dict[tuple[str, str], Verdict], dict[str, Any]]:
        """Reconciliation: the whole registry through the real `registry.content` probe, judged."""
        started = time.monotonic()
        records = await self._gather(None)
        record = records.get(CONTENT)
        if record is None or record.state != "ok":
            raise RuntimeError(f"the content walk failed: {record.reason if record else 'not gathered'}")
        tags = [t for t in record.value.get("tags") or [] if t.get("tag") != "*"]
        subjects = [f"{t['repo']}:{t['tag']}" for t in tags]
        _, by_subject = self._judge(records, subjects)
        out = {}
        for fact in tags:
            state, message, findings = by_subject[f"{fact['repo']}:{fact['tag']}"]
            out[(fact["repo"], fact["tag"])] = Verdict(str(fact.get("digest") or ""), state, message, findings)
        info = {"tags": len(tags), "seconds": round(time.monotonic() - started, 3),
                "source": record.value.get("source")}
        return out, info

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
            await self._token_client.aclose()
            self._fetcher = None


def _manifest_unknown(fact: Mapping[str, Any]) -> bool:
    error = str(fact.get("error") or "")
    return any(text in error for text in ("HTTP 404", "no current/link", "tag not found in storage"))
