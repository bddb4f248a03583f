"""signatures.* judged on evidence recorded from a scripted registry walk, through the API and from
storage: the verdict per tag (unsigned / valid / invalid / untrusted) and API-storage agreement."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from auditor.checkapi import ProbeRecord
from auditor.commands.audit import signature_repository
from auditor.content.storage import StorageReader
from auditor.errors import UsageError
from auditor.model import Status

from .helpers import judge, records
from .test_content_fake import HOST, FakeRegistry, new_key, public_pem, standard_content
from .test_content_walker import _walk

# expected verdict -> (signatures.present, signatures.valid)
EXPECTED = {
    "valid": (Status.PASS, Status.PASS),
    "unsigned": (Status.FAIL, Status.SKIP),
    "invalid": (Status.PASS, Status.FAIL),
    "untrusted": (Status.PASS, Status.FAIL),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    trusted, untrusted = new_key(), new_key()
    reg, expected = standard_content(trusted, untrusted)
    api = asyncio.run(_walk(reg))
    api["hosts"] = [HOST]
    root = tmp_path_factory.mktemp("storage")
    reg.write_storage(root)
    disk = StorageReader(root).walk()
    disk["hosts"] = [HOST]
    trust = {"keys": [{"source": "trusted.pub", "pem": public_pem(trusted)}], "trusted_root_json": None,
             "errors": []}
    return {"api": api, "disk": disk, "trust": trust, "expected": expected, "untrusted": untrusted}


def evidence(content: dict, trust: dict) -> dict[str, ProbeRecord]:
    return records(registry__content=content, signatures__trust=trust)


def by_subject(results) -> dict[str, Any]:
    return {r.subject: r for r in results}


@pytest.mark.parametrize("source", ["api", "disk"])
def test_each_tag_gets_the_verdict_its_signature_deserves(world, source):
    ev = evidence(world[source], world["trust"])
    present = by_subject(judge("signatures.present", ev))
    valid = by_subject(judge("signatures.valid", ev))
    assert set(present) == set(valid) == set(world["expected"])
    for subject, verdict in world["expected"].items():
        want_present, want_valid = EXPECTED[verdict]
        assert present[subject].status is want_present, (subject, present[subject].message)
        assert valid[subject].status is want_valid, (subject, valid[subject].message)
        assert present[subject].observed["digest"].startswith("sha256:")


def test_reasons_name_the_problem(world):
    valid = by_subject(judge("signatures.valid", evidence(world["api"], world["trust"])))
    assert "another image" in valid["app/api:v3-replayed"].message
    assert "untrusted key" in valid["app/web:v1-untrusted"].message
    assert "publicKey.hint" in valid["app/web:v3-bundle-untrusted"].message
    assert "names repository 'app/api'" in valid["base/os:other-repo-ref"].message
    assert valid["app/api:v3-replayed"].observed["digest"] in valid["app/api:v3-replayed"].message


def test_api_and_storage_give_identical_results(world):
    for check_id in ("signatures.present", "signatures.valid"):
        api = [(r.subject, r.status, r.message) for r in judge(check_id, evidence(world["api"], world["trust"]))]
        disk = [(r.subject, r.status, r.message) for r in judge(check_id, evidence(world["disk"], world["trust"]))]
        assert api == disk


def test_without_trusted_keys_signed_tags_are_errors_not_passes(world):
    trust = {"keys": [], "trusted_root_json": None, "errors": []}
    valid = by_subject(judge("signatures.valid", evidence(world["api"], trust)))
    assert valid["app/api:v1"].status is Status.ERROR
    assert "no trusted public key" in valid["app/api:v1"].message


def test_trusting_the_other_key_flips_the_verdicts(world):
    trust = {"keys": [{"source": "other.pub", "pem": public_pem(world["untrusted"])}], "trusted_root_json": None,
             "errors": []}
    valid = by_subject(judge("signatures.valid", evidence(world["api"], trust)))
    assert valid["app/web:v1-untrusted"].status is Status.PASS
    assert valid["app/api:v1"].status is Status.FAIL


def test_host_must_match_target_or_alias(world, tmp_path: Path):
    content = {**world["api"], "hosts": ["elsewhere.example"]}
    valid = by_subject(judge("signatures.valid", evidence(content, world["trust"])))
    assert valid["app/api:v1"].status is Status.FAIL and "names host" in valid["app/api:v1"].message
    profile = tmp_path / "aliases.yaml"
    profile.write_text(f"name: aliases\nextends: seed-hardened\nparams:\n"
                       f"  signatures.valid: {{host_aliases: [{HOST}]}}\n")
    from auditor.profile import load_profile

    valid = by_subject(judge("signatures.valid", evidence(content, world["trust"]), load_profile(str(profile))))
    assert valid["app/api:v1"].status is Status.PASS


def test_unreadable_tag_is_an_error_and_empty_registry_a_skip(world):
    content = {**world["api"], "tags": [{"repo": "r", "tag": "t", "error": "manifest GET answered HTTP 500"}]}
    for check_id in ("signatures.present", "signatures.valid"):
        (result,) = judge(check_id, evidence(content, world["trust"]))
        assert result.status is Status.ERROR and "HTTP 500" in result.message
    empty = {**world["api"], "tags": []}
    (result,) = judge("signatures.present", evidence(empty, world["trust"]))
    assert result.status is Status.SKIP


def test_failed_walk_makes_the_checks_error():
    ev = {"registry.content": ProbeRecord("registry.content", "error", reason="Link header loops"),
          "signatures.trust": ProbeRecord("signatures.trust", "ok", {"keys": []})}
    (result,) = judge("signatures.present", ev)
    assert result.status is Status.ERROR and "loops" in result.message


def test_signatures_in_a_cosign_repository_are_found_through_the_api_and_in_storage(tmp_path: Path):
    """COSIGN_REPOSITORY: cosign pushes every image's .sig tag into one repository."""
    key = new_key()
    reg = FakeRegistry()
    signed = reg.push_image("app/api", "v1", "api-v1")
    reg.sign_legacy("ops/signatures", signed.manifest, key, reference=f"{HOST}/app/api")
    reg.push_image("app/api", "v2", "api-v2")
    trust = {"keys": [{"source": "k.pub", "pem": public_pem(key)}], "trusted_root_json": None, "errors": []}
    api = asyncio.run(_walk(reg, signature_repository="ops/signatures"))
    reg.write_storage(tmp_path)
    disk = StorageReader(tmp_path, "ops/signatures").walk()
    assert api["tags"] == disk["tags"]
    assert api["signature_repository"] == disk["signature_repository"] == "ops/signatures"
    for facts in (api, disk):
        facts["hosts"] = [HOST]
        present = by_subject(judge("signatures.present", evidence(facts, trust)))
        valid = by_subject(judge("signatures.valid", evidence(facts, trust)))
        assert set(present) == {"app/api:v1", "app/api:v2"}  # the signature repository holds no image tags
        assert present["app/api:v1"].status is Status.PASS and valid["app/api:v1"].status is Status.PASS
        assert present["app/api:v2"].status is Status.FAIL
    plain = asyncio.run(_walk(reg))
    plain["hosts"] = [HOST]
    assert by_subject(judge("signatures.present", evidence(plain, trust)))["app/api:v1"].status is Status.FAIL


@pytest.mark.parametrize("value,url,expected", [
    ("ops/signatures", "https://registry.example", "ops/signatures"),
    ("registry.example/ops/signatures", "https://registry.example", "ops/signatures"),
    ("registry.example:443/sigs", "https://registry.example", "sigs"),
    ("localhost:5000/sigs", None, "sigs"),
    ("other.example/sigs", "https://registry.example", UsageError),
    ("Ops/UPPER", "https://registry.example", UsageError),
])
def test_signature_repository_option(value: str, url: str | None, expected: Any):
    if expected is UsageError:
        with pytest.raises(UsageError):
            signature_repository(value, url)
    else:
        assert signature_repository(value, url) == expected
