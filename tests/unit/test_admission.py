"""admission.policy on Kubernetes manifest fixtures (tests/fixtures/k8s/<case>/), each naming what
passes and what fails; evidence from the real `admission.manifests` probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.checkapi import ProbeRecord
from auditor.errors import NotApplicable
from auditor.model import JSON, Status
from auditor.probes.admission import admission_manifests, key_fingerprints
from auditor.target import Target

from . import helpers
from .helpers import FIXTURES, judge

K8S = FIXTURES / "k8s"
TRUSTED = str(K8S / "keys" / "cosign.pub")
URL = "https://registry.example.com"


def run_probe(target: Target, evidence: dict[str, JSON] | None = None) -> JSON:
    """Run admission_manifests through the real probe API; other evidence comes from `evidence`."""
    return helpers.run_probe(admission_manifests, target, evidence)


def verdict(case: str, url: str | None = URL, keys: tuple[str, ...] = (TRUSTED,),
            registry: JSON = None) -> tuple[Status, str]:
    target = Target(url=url, paths={"manifests_dir": str(K8S / case)}, cosign_keys=keys)
    value = run_probe(target, {"config.registry": registry} if registry is not None else None)
    results = judge("admission.policy", {"admission.manifests": ProbeRecord("admission.manifests", "ok", value)})
    assert len(results) == 1, results
    return results[0].status, results[0].message


@pytest.mark.parametrize("case", ["guide-fixed", "v2beta1-entry-action", "list-form"])
def test_enforcing_policies_with_the_trusted_key_pass(case: str) -> None:
    status, message = verdict(case)
    assert status is Status.PASS, message


def test_guide_verbatim_pattern_matches_nothing_errata_5() -> None:
    status, message = verdict("guide-verbatim")
    assert status is Status.FAIL
    assert "['registry.example.com/'] do not match" in message
    assert 'write "registry.example.com/*"' in message


@pytest.mark.parametrize(("case", "reason"), [
    ("audit-mode", "failure action is Audit, not Enforce"),
    ("no-action", "failure action is Audit, not Enforce"),
    ("entry-audit-override", "failure action is Audit, not Enforce"),
    ("untrusted-key", "no attestor requires a trusted key"),
    ("count-one", "no attestor requires a trusted key"),
    ("namespaced-policy", "a namespaced Policy (namespace prod) covers one namespace only"),
    ("other-registry", "do not match registry.example.com's images"),
    ("no-policy", "no Kyverno policy with verifyImages among 1 manifest file(s)"),
])
def test_failing_policies_name_why(case: str, reason: str) -> None:
    status, message = verdict(case)
    assert status is Status.FAIL
    assert reason in message


def test_other_host_is_not_covered_by_this_policy() -> None:
    status, message = verdict("guide-fixed", url="https://registry.internal.test")
    assert status is Status.FAIL and "registry.internal.test's images" in message


def test_registry_host_can_come_from_the_registry_config() -> None:
    registry = {"config": {"http": {"host": "https://registry.example.com"}}}
    assert verdict("guide-fixed", url=None, registry=registry)[0] is Status.PASS


def test_non_default_port_is_part_of_the_image_reference() -> None:
    status, message = verdict("guide-fixed", url="https://registry.example.com:5443")
    assert status is Status.FAIL and "registry.example.com:5443/myapp/backend" in message


def test_untrusted_cosign_key_given_as_trusted_fails_the_good_policy() -> None:
    status, _ = verdict("guide-fixed", keys=(str(K8S / "keys" / "untrusted.pub"),))
    assert status is Status.FAIL


def test_no_trusted_key_is_an_error_not_a_pass() -> None:
    status, message = verdict("guide-fixed", keys=())
    assert status is Status.ERROR and "--cosign-key" in message


def test_unknown_registry_host_is_an_error() -> None:
    status, message = verdict("guide-fixed", url=None)
    assert status is Status.ERROR and "host name" in message


def test_keys_compare_by_der_not_pem_text() -> None:
    trusted = Path(TRUSTED).read_text()
    policy = (K8S / "guide-fixed" / "policy.yaml").read_text()
    assert trusted.strip().splitlines()[1] + "\n" not in policy  # wrapped at 76, not 64 columns
    assert key_fingerprints(trusted)[0] == key_fingerprints(policy)[0]


def test_no_manifests_dir_is_not_applicable_and_the_check_skips() -> None:
    with pytest.raises(NotApplicable, match="--manifests-dir"):
        run_probe(Target(url=URL, inside=True))
    record = ProbeRecord("admission.manifests", "not_applicable", reason="no Kubernetes policy manifests given")
    assert [r.status for r in judge("admission.policy", {"admission.manifests": record})] == [Status.SKIP]


def test_broken_yaml_is_reported_and_other_files_still_count(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    (tmp_path / "policy.yaml").write_text((K8S / "guide-fixed" / "policy.yaml").read_text())
    value = run_probe(Target(url=URL, paths={"manifests_dir": str(tmp_path)}, cosign_keys=(TRUSTED,)))
    assert len(value["errors"]) == 1 and "bad.yaml: not YAML" in value["errors"][0]
    results = judge("admission.policy", {"admission.manifests": ProbeRecord("admission.manifests", "ok", value)})
    assert results[0].status is Status.PASS
