"""Signature verification of many tags, spread over two threads (auditor.checkapi.map_in_order),
gives exactly the verdicts of one thread: tampered, untrusted and misdirected signatures still fail."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading

from auditor.checks import _content
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.checkapi import Evidence, ProbeRecord, map_in_order
from auditor.judge.cosign import INVALID, UNTRUSTED, VALID

TAGS = 700  # more than two shares of map_in_order's default min_share


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _layer(key: ec.EllipticCurvePrivateKey, digest: str, reference: str) -> dict[str, str]:
    payload = json.dumps({"critical": {"identity": {"docker-reference": reference},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"}, "optional": None}).encode()
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return {"payload_b64": base64.b64encode(payload).decode(),
            "payload_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
            "signature": base64.b64encode(signature).decode()}


def _evidence() -> tuple[Evidence, dict[str, str]]:
    trusted, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    tags, expected = [], {}
    for n in range(TAGS):
        repo, digest = f"app/r{n}", "sha256:" + hashlib.sha256(b"image %d" % n).hexdigest()
        layer, want = _layer(trusted, digest, f"reg.example/{repo}"), VALID
        if n % 7 == 3:  # signature bytes altered
            raw = bytearray(base64.b64decode(layer["signature"]))
            raw[-1] ^= 1
            layer["signature"], want = base64.b64encode(bytes(raw)).decode(), UNTRUSTED
        elif n % 7 == 5:  # signed by a key nobody trusts
            layer, want = _layer(stranger, digest, f"reg.example/{repo}"), UNTRUSTED
        elif n % 7 == 6:  # a valid signature of another image
            layer, want = _layer(trusted, "sha256:" + "0" * 64, f"reg.example/{repo}"), INVALID
        tags.append({"repo": repo, "tag": "v1", "digest": digest, "signatures": [
            {"scheme": "legacy", "tag": digest.replace(":", "-") + ".sig", "layers": [layer]}]})
        expected[f"{repo}:v1"] = want
    records = {
        "registry.content": ProbeRecord("registry.content", "ok", {"tags": tags, "hosts": ["reg.example"]}),
        "signatures.trust": ProbeRecord("signatures.trust", "ok", {"keys": [{"source": "cosign.pub",
                                                                            "pem": _pem(trusted)}], "errors": []}),
    }
    return Evidence(records, dt.datetime.now(dt.UTC)), expected


def test_threaded_verification_equals_one_thread() -> None:
    ev, expected = _evidence()
    verdicts = _content.signature_verdicts(ev, {})
    assert {subject: [v.status for v in found] for subject, found in verdicts.items()} == \
        {subject: [status] for subject, status in expected.items()}
    one = _content.Verification(ev, {})
    assert verdicts == {_content.subject(t): one.verify_tag(t) for t in _content.tags(ev)}
    assert list(verdicts) == [_content.subject(t) for t in _content.tags(ev)]


def test_map_in_order_keeps_order_and_uses_threads() -> None:
    seen: set[int] = set()
    meet = threading.Barrier(2, timeout=30)

    def square(n: int) -> int:
        seen.add(threading.get_ident())
        if n in (0, 500):  # the first item of each of the two shares: both shares run at once
            meet.wait()
        return n * n

    assert map_in_order(square, range(1000)) == [n * n for n in range(1000)]
    assert len(seen) == 2 and threading.get_ident() not in seen
    seen.clear()
    assert map_in_order(square, range(1, 300)) == [n * n for n in range(1, 300)]  # one share: this thread
    assert seen == {threading.get_ident()}
    assert map_in_order(square, []) == []
