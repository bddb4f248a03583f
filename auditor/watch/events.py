"""Distribution's notification envelope, parsed and classified (pure, no I/O).

The registry POSTs `{"events": [Event, ...]}` with Content-Type
`application/vnd.docker.distribution.events.v1+json` (distribution 2.x; v3 sends `...v2+json`).
An Event has `id`, `timestamp`, `action` (push | pull | mount | delete), `target`
{mediaType, size, digest, length, repository, fromRepository, url, tag, references},
`request` {id, addr, host, method, useragent}, `actor` {name} and `source` {addr, instanceID}.

Contract: `parse_envelope(body)` returns the events or raises `EnvelopeError` (the caller answers
400); `classify(event)` says what an event means for the tags being watched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from auditor import bounded

MEDIA_TYPES = frozenset({
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
    "application/json",
})
MAX_EVENTS = 1000            # per envelope (distribution sends one per request)
MAX_FIELD = 1024             # characters of any string field kept
ARTIFACT_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[\w][\w.-]{0,127}$")
MANIFEST_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
})


class EnvelopeError(ValueError):
    """The body is not a notification envelope."""


@dataclass(frozen=True)
class Event:
    """One registry event, the fields the watcher keeps."""

    id: str
    timestamp: str
    action: str
    media_type: str
    repository: str
    digest: str
    tag: str
    actor: str
    source: str

    def to_json(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Meaning:
    """What an event does to the watched tags.

    kind: `tag-push` (a tag now points at digest), `artifact-push` (a cosign signature, attestation
    or referrer was pushed for `subject`), `tag-delete`, `manifest-delete` (every tag on digest),
    `ignored` (blob events, pulls, mounts, untagged manifests)."""

    kind: str
    repository: str = ""
    tag: str = ""
    digest: str = ""
    subject: str = ""


def _text(value: Any) -> str:
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_event(raw: Any) -> Event:
    if not isinstance(raw, dict):
        raise EnvelopeError("an event is not a JSON object")
    event_id = _text(raw.get("id"))
    if not event_id:
        raise EnvelopeError("an event has no id")
    target = _obj(raw.get("target"))
    return Event(
        id=event_id,
        timestamp=_text(raw.get("timestamp")),
        action=_text(raw.get("action")),
        media_type=_text(target.get("mediaType")),
        repository=_text(target.get("repository")),
        digest=_text(target.get("digest")),
        tag=_text(target.get("tag")),
        actor=_text(_obj(raw.get("actor")).get("name")),
        source=_text(_obj(raw.get("source")).get("addr")),
    )


def parse_envelope(body: bytes) -> list[Event]:
    """The events of a notification body; EnvelopeError when it is not one."""
    try:
        doc = bounded.load_json(body, "notification envelope")
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events", []), list):
        raise EnvelopeError("not an envelope: expected {\"events\": [...]}")
    raw_events = doc.get("events") or []
    if len(raw_events) > MAX_EVENTS:
        raise EnvelopeError(f"more than {MAX_EVENTS} events in one envelope")
    return [parse_event(e) for e in raw_events]


def classify(event: Event) -> Meaning:
    """The event's meaning for tag state; names that are not valid repository/tag names are ignored."""
    repo = event.repository
    if not REPO.match(repo):
        return Meaning("ignored")
    if event.action == "delete":
        if event.tag and TAG.match(event.tag):
            artifact = ARTIFACT_TAG.match(event.tag)
            if artifact:
                return Meaning("artifact-push", repo, event.tag, event.digest, f"sha256:{artifact.group(2)}")
            return Meaning("tag-delete", repo, event.tag, event.digest)
        if DIGEST.match(event.digest):
            return Meaning("manifest-delete", repo, "", event.digest)
        return Meaning("ignored")
    if event.action != "push" or event.media_type not in MANIFEST_TYPES or not DIGEST.match(event.digest):
        return Meaning("ignored")
    if event.tag and TAG.match(event.tag):
        artifact = ARTIFACT_TAG.match(event.tag)
        if artifact:
            return Meaning("artifact-push", repo, event.tag, event.digest, f"sha256:{artifact.group(2)}")
        return Meaning("tag-push", repo, event.tag, event.digest)
    # an untagged manifest: a platform child, or a sigstore bundle pushed by digest (its subject is
    # only known from the manifest; the walk finds it, so re-judge the repository's pending tags)
    return Meaning("untagged-push", repo, "", event.digest)
