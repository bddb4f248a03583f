"""proxy.* and admission.policy on the real lab: `regaudit audit --inside` in the registry namespace.

The lab runs Apache (TLS, auth) in front of nginx (127.0.0.1:8080) in front of the registry
(tests/lab/render.py). Discovery finds both proxies; nginx's effective config comes from `nginx -T`.
hardened passes every proxy check; weak fails exactly its seeded proxy defects
(tests/lab/defects/weak.yaml), each with observed and expected evidence.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

DEFECTS = Path(__file__).resolve().parent.parent / "lab" / "defects" / "weak.yaml"
PROXY_CHECKS = ("proxy.apache-tls", "proxy.apache-proxy", "proxy.apache-auth", "proxy.nginx-body",
                "proxy.nginx-buffers", "proxy.nginx-timeouts", "proxy.forwarded-headers")


def audit(lab: Any, out: Path, selected: tuple[str, ...], *extra: str) -> dict[str, Any]:
    binary = shutil.which("regaudit")
    assert binary, "regaudit is not installed (pip install -e .)"
    argv = ["ip", "netns", "exec", lab.ns("registry"), binary, "audit", "--inside", "--no-progress",
            "--no-history", "--format", "json", "--output", str(out), "--evidence-out", str(out / "evidence.json"),
            *extra]
    for check_id in selected:
        argv += ["--select", check_id]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr + proc.stdout
    report: dict[str, Any] = json.loads((out / "regaudit.json").read_text())
    report["_evidence"] = json.loads((out / "evidence.json").read_text())
    return report


def by_check(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in report["results"]:
        grouped.setdefault(result["check"], []).append(result)
    return grouped


def probe_value(report: dict[str, Any], name: str) -> dict[str, Any]:
    record = report["_evidence"]["probes"][name]
    assert record["state"] == "ok", record
    return dict(record["value"])


@pytest.fixture(scope="module")
def hardened_report(lab_hardened: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return audit(lab_hardened, tmp_path_factory.mktemp("proxy-hardened"), PROXY_CHECKS)


@pytest.fixture(scope="module")
def weak_report(lab_weak: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return audit(lab_weak, tmp_path_factory.mktemp("proxy-weak"), PROXY_CHECKS)


def test_hardened_passes_every_proxy_check(hardened_report: dict[str, Any]) -> None:
    grouped = by_check(hardened_report)
    assert set(grouped) == set(PROXY_CHECKS)
    bad = {c: [r for r in rs if r["status"] != "pass"] for c, rs in grouped.items()}
    assert not {c: rs for c, rs in bad.items() if rs}, bad
    assert hardened_report["exit_code"] == 0


def test_hardened_evidence_is_the_running_deployment(hardened_report: dict[str, Any], lab_hardened: Any) -> None:
    nginx = probe_value(hardened_report, "config.nginx")
    assert nginx["running"] is True and nginx["method"].startswith("nginx -T")
    assert nginx["pid"] == lab_hardened["nginx"]["pid"]
    assert nginx["path"] == lab_hardened["nginx"]["config"]
    assert nginx["proxy_temp_path"] == lab_hardened["nginx"]["proxy_temp_path"]
    assert nginx["client_body_temp_path"] == lab_hardened["nginx"]["client_body_temp_path"]
    assert nginx["plaintext_v2_listeners"] == []  # docs/guide-notes.md#inner-nginx-listener applied: 127.0.0.1:8080
    assert nginx["registry_servers"][0]["proxy_pass"]["targets"] == lab_hardened["registry"]["listen"]
    apache = probe_value(hardened_report, "config.apache")
    assert apache["running"] is True and apache["path"] == lab_hardened["apache"]["config"]
    assert apache["vhost"]["server_name"] == lab_hardened.hostname
    assert "*:443" in apache["apache2ctl"]["S"]["output"]
    assert apache["apache2ctl_agrees"] == {"files_agree": True, "files_only_apache_read": [],
                                           "files_only_parser_read": [], "vhost_known_to_apache": True}
    assert apache["auth_user_file"]["path"] == lab_hardened["auth"]["htpasswd"]
    assert [s["name"] for s in apache["cipher_expansion"]["suites"] if s["protocol"] != "TLSv1.3"] == [
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]


def test_weak_fails_exactly_its_seeded_proxy_defects(weak_report: dict[str, Any]) -> None:
    seeded = {c for d in yaml.safe_load(DEFECTS.read_text())["defects"] for c in d["checks"]} & set(PROXY_CHECKS)
    assert seeded == {"proxy.apache-tls", "proxy.apache-auth", "proxy.nginx-body", "proxy.nginx-timeouts"}
    grouped = by_check(weak_report)
    failing = {c for c, rs in grouped.items() if any(r["status"] == "fail" for r in rs)}
    assert failing == seeded
    for check_id in set(PROXY_CHECKS) - seeded:
        assert {r["status"] for r in grouped[check_id]} == {"pass"}, grouped[check_id]
    for check_id in seeded:
        for result in grouped[check_id]:
            assert result["status"] == "fail", result
            assert result["observed"] and result["expected"], result


def test_weak_failures_name_the_seeded_lines(weak_report: dict[str, Any]) -> None:
    grouped = by_check(weak_report)
    message = {c: " ".join(r["message"] for r in rs) for c, rs in grouped.items()}
    assert "SSLProtocol 'all'" in message["proxy.apache-tls"] and "AES128-SHA" in message["proxy.apache-tls"]
    assert "Require all granted" in message["proxy.apache-auth"]
    assert "client_max_body_size 10m" in message["proxy.nginx-body"]
    assert "proxy_read_timeout 60s" in message["proxy.nginx-timeouts"]
    assert "proxy_send_timeout 60s" in message["proxy.nginx-timeouts"]


def test_explicit_paths_override_discovery(lab_hardened: Any, tmp_path: Path) -> None:
    nginx_copy = tmp_path / "nginx.conf"
    nginx_copy.write_text(Path(lab_hardened["nginx"]["config"]).read_text().replace(
        "client_max_body_size 0;", "client_max_body_size 1m;"))
    report = audit(lab_hardened, tmp_path / "out", ("proxy.nginx-body",), "--nginx-config", str(nginx_copy))
    nginx = probe_value(report, "config.nginx")
    assert nginx["path"] == str(nginx_copy) and nginx["running"] is False
    assert nginx["method"] == "crossplane (file)"
    assert [r["status"] for r in report["results"]] == ["fail"]


def test_admission_policy_with_the_lab_cosign_key(lab_hardened: Any, tmp_path: Path) -> None:
    public_key = Path(lab_hardened["cosign"]["public_key"]).read_text().strip()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    indented = "\n".join("                      " + line for line in public_key.splitlines())
    (manifests / "policy.yaml").write_text(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: verify-image-signatures\n"
        "spec:\n  validationFailureAction: Enforce\n  background: false\n  rules:\n"
        "    - name: verify-cosign-signature\n      match:\n        any:\n          - resources:\n"
        "              kinds: [Pod]\n      verifyImages:\n        - imageReferences:\n"
        f"            - \"{lab_hardened.hostname}/*\"\n          attestors:\n            - entries:\n"
        f"                - keys:\n                    publicKeys: |-\n{indented}\n")
    args = ("--manifests-dir", str(manifests), "--cosign-key", lab_hardened["cosign"]["public_key"])
    report = audit(lab_hardened, tmp_path / "trusted", ("admission.policy",), *args)
    assert [r["status"] for r in report["results"]] == ["pass"], report["results"]
    untrusted = ("--manifests-dir", str(manifests), "--cosign-key", lab_hardened["cosign"]["untrusted_public_key"])
    report = audit(lab_hardened, tmp_path / "untrusted", ("admission.policy",), *untrusted)
    assert [r["status"] for r in report["results"]] == ["fail"]
    report = audit(lab_hardened, tmp_path / "none", ("admission.policy",))
    assert [r["status"] for r in report["results"]] == ["skip"]


def test_token_lab_passes_apache_auth_through_registry_token_auth(lab_token: Any, tmp_path: Path) -> None:
    report = audit(lab_token, tmp_path, PROXY_CHECKS)
    grouped = by_check(report)
    assert {c: [r["status"] for r in rs] for c, rs in grouped.items()} == {c: ["pass"] for c in PROXY_CHECKS}
    assert "authenticates with tokens" in grouped["proxy.apache-auth"][0]["message"]
    assert probe_value(report, "config.apache")["v2_access"]["auth_type"]["value"] is None
