"""The notification envelope (distribution's Event shape) and what each event means for tag state."""

from __future__ import annotations

import json

import pytest

from auditor.watch.events import EnvelopeError, classify, parse_envelope

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def envelope(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def event(action: str = "push", media: str = MANIFEST, repo: str = "team/app", tag: str = "v1",
          digest: str = DIGEST, event_id: str = "e1") -> dict:
    # the fields distribution 2.8 sends (notifications/event.go)
    return {"id": event_id, "timestamp": "2026-12-04T05:00:00.123456789Z", "action": action,
            "target": {"mediaType": media, "size": 525, "digest": digest, "length": 525, "repository": repo,
                       "url": f"https://registry.example/v2/{repo}/manifests/{digest}", "tag": tag},
            "request": {"id": "r1", "addr": "10.0.5.20:41234", "host": "registry.example", "method": "PUT",
                        "useragent": "containerd/1.7"},
            "actor": {"name": "ci"}, "source": {"addr": "registry:5000", "instanceID": "i1"}}


def test_a_tagged_manifest_push_points_the_tag_at_its_digest() -> None:
    (ev,) = parse_envelope(envelope(event()))
    assert (ev.id, ev.action, ev.repository, ev.tag, ev.digest, ev.actor) == ("e1", "push", "team/app", "v1",
                                                                                DIGEST, "ci")
    meaning = classify(ev)
    assert (meaning.kind, meaning.repository, meaning.tag, meaning.digest) == ("tag-push", "team/app", "v1", DIGEST)


def test_a_signature_or_attestation_push_names_its_subject() -> None:
    for suffix in (".sig", ".att", ""):
        (ev,) = parse_envelope(envelope(event(tag=f"sha256-{'b' * 64}{suffix}")))
        meaning = classify(ev)
        assert meaning.kind == "artifact-push" and meaning.subject == OTHER


def test_deletes_retire_by_tag_or_by_digest() -> None:
    (by_digest,) = parse_envelope(envelope(event(action="delete", tag="", media="")))
    assert classify(by_digest).kind == "manifest-delete"
    (by_tag,) = parse_envelope(envelope(event(action="delete", tag="v1", media="")))
    assert classify(by_tag).kind == "tag-delete"


def test_layers_pulls_and_odd_names_change_nothing() -> None:
    layer = event(media="application/vnd.oci.image.layer.v1.tar+gzip", tag="")
    pull = event(action="pull")
    bad_repo = event(repo="../../etc")
    events = parse_envelope(envelope(layer, pull, bad_repo))
    assert [classify(e).kind for e in events] == ["ignored", "ignored", "ignored"]
    (untagged,) = parse_envelope(envelope(event(tag="")))
    assert classify(untagged).kind == "untagged-push"


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"events": {}}', b'{"events": [1]}', b'{"events": [{"action": "push"}]}',
                                  "\udcff".encode("utf-8", "surrogatepass")])
def test_what_is_not_an_envelope_is_refused(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(body)


def test_an_empty_envelope_is_valid_and_huge_ones_are_refused() -> None:
    assert parse_envelope(b'{"events": []}') == []
    with pytest.raises(EnvelopeError, match="more than"):
        parse_envelope(envelope(*[event(event_id=str(i)) for i in range(1001)]))
