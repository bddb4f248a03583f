"""TLS policy presets: the published data, the profile's `tls_policy`, and how each preset judges
the lab's hardened and weak Apache (recorded evidence: tests/fixtures/lab-hardened, lab-weak).

The expected table is what the published policies say about those servers: hardened accepts TLS 1.2
and 1.3 with two ECDHE AES-256-GCM suites (plus OpenSSL's three TLS 1.3 suites), RSA and ECDSA
certificates valid 365 days, HSTS two years, OCSP stapled; weak accepts TLS 1.0-1.3, CBC and RSA
key-exchange suites, a certificate with 10 days left, no HSTS, no stapling.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from auditor.errors import UsageError
from auditor.plugins import load_checks
from auditor.profile import load_profile, validate_against_checks
from auditor.tlspolicy import PRESETS, describe, preset_params

from .helpers import FIXTURES

REPO = Path(__file__).resolve().parents[2]
LAB_PROFILE = REPO / "tests" / "lab-profile.yaml"
CHECKS = ("tls.protocols", "tls.ciphers", "tls.tls13", "tls.certificate", "tls.ocsp-stapling", "http.hsts",
          "proxy.apache-tls")
# preset -> lab -> the checks that fail (every other check of CHECKS passes)
EXPECTED_FAILS = {
    None: {"hardened": set(),
           "weak": {"tls.protocols", "tls.ciphers", "tls.certificate", "tls.ocsp-stapling", "http.hsts",
                    "proxy.apache-tls"}},
    # TLS 1.3 only, no TLS 1.2 suite, ECDSA certificates of at most 90 days
    "mozilla-modern": {"hardened": {"tls.protocols", "tls.ciphers", "tls.certificate", "proxy.apache-tls"},
                       "weak": {"tls.protocols", "tls.ciphers", "tls.certificate", "tls.ocsp-stapling",
                                "http.hsts", "proxy.apache-tls"}},
    # TLS 1.2 + 1.3, nine AEAD suites: the hardened server's two are among them
    "mozilla-intermediate": {"hardened": set(),
                             "weak": {"tls.protocols", "tls.ciphers", "tls.certificate", "tls.ocsp-stapling",
                                      "http.hsts", "proxy.apache-tls"}},
    # TLS 1.3 suites without ChaCha20-Poly1305, which OpenSSL offers by default
    "nist-800-52r2": {"hardened": {"tls.ciphers"},
                      "weak": {"tls.protocols", "tls.ciphers", "tls.certificate", "tls.ocsp-stapling", "http.hsts",
                               "proxy.apache-tls"}},
}


def _profile(tmp: Path, preset: str | None) -> Path:
    if preset is None:
        return LAB_PROFILE
    path = tmp / f"{preset}.yaml"
    path.write_text(f"name: lab-{preset}\nextends: {LAB_PROFILE}\ntls_policy: {preset}\n")
    return path


def _judge(tmp: Path, lab: str, preset: str | None) -> dict:
    out = tmp / f"{lab}-{preset}"
    evidence = FIXTURES / f"lab-{lab}"
    proc = subprocess.run(["regaudit", "evaluate", str(evidence / "outside.json"), str(evidence / "inside.json"),
                           "--profile", str(_profile(tmp, preset)), "--select", ",".join(CHECKS), "--format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    return json.loads((out / "regaudit.json").read_text())


@pytest.mark.parametrize("preset", [None, *PRESETS])
@pytest.mark.parametrize("lab", ["hardened", "weak"])
def test_each_preset_judges_the_lab_apache_as_its_policy_says(tmp_path: Path, lab: str, preset: str | None) -> None:
    report = _judge(tmp_path, lab, preset)
    statuses = report["scores"]["checks"]
    assert set(statuses) == set(CHECKS)
    failing = {c for c, s in statuses.items() if s == "fail"}
    assert failing == EXPECTED_FAILS[preset][lab]
    assert {c for c, s in statuses.items() if s not in ("pass", "fail")} == set()
    if preset is not None:
        assert report["profile"]["tls_policy"] == describe(preset)


def test_the_failures_name_the_policy_values(tmp_path: Path) -> None:
    modern = _judge(tmp_path, "hardened", "mozilla-modern")["results"]
    messages = {r["check"]: r["message"] for r in modern if r["status"] == "fail"}
    assert messages["tls.protocols"] == "accepts TLSv1.2 (only TLSv1.3 allowed)"
    certificate = [r["message"] for r in modern if r["check"] == "tls.certificate" and r["status"] == "fail"]
    assert any("the profile allows at most 90" in m for m in certificate)
    assert any("RSA key (the profile allows EC)" in m for m in certificate)
    nist = _judge(tmp_path, "hardened", "nist-800-52r2")["results"]
    assert {r["message"] for r in nist if r["status"] == "fail"} == {
        "1 accepted suite(s) not allowed: TLS_CHACHA20_POLY1305_SHA256 (TLSv1.3)"}
    weak = _judge(tmp_path, "weak", "nist-800-52r2")["results"]
    ciphers = " ".join(r["message"] for r in weak if r["check"] == "tls.ciphers")
    # NIST allows ECDHE CBC suites in TLS 1.2; the RSA key-exchange one is still refused
    assert "TLS_RSA_WITH_AES_128_CBC_SHA (TLSv1.2)" in ciphers
    assert "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (TLSv1.2)" not in ciphers


def test_presets_come_from_the_published_data() -> None:
    modern = preset_params("mozilla-modern")
    assert modern["tls.protocols"] == {"allowed_protocols": ["TLSv1.3"]}
    assert modern["tls.ciphers"]["allowed_tls12_ciphers"] == []
    assert modern["http.hsts"] == {"min_max_age": 63072000}
    assert modern["tls.certificate"]["key_types"] == ["EC"] and modern["tls.certificate"]["max_lifetime_days"] == 90
    intermediate = preset_params("mozilla-intermediate")
    assert len(intermediate["tls.ciphers"]["allowed_tls12_ciphers"]) == 9
    assert intermediate["tls.protocols"] == {"allowed_protocols": ["TLSv1.2", "TLSv1.3"]}
    nist = preset_params("nist-800-52r2")
    assert "TLS_CHACHA20_POLY1305_SHA256" not in nist["tls.ciphers"]["allowed_tls13_ciphers"]
    assert "CBC" not in nist["tls.ciphers"]["forbidden_flags"]
    assert describe("mozilla-intermediate")["source"] == "https://ssl-config.mozilla.org/guidelines/5.7.json"
    assert describe("nist-800-52r2")["source"] == "https://doi.org/10.6028/NIST.SP.800-52r2"


def test_every_preset_parameter_is_a_known_parameter_of_a_known_check(tmp_path: Path) -> None:
    checks = load_checks()
    for preset in PRESETS:
        profile = load_profile(str(_profile(tmp_path, preset)))
        assert validate_against_checks(profile, checks) == []
        for check_id, values in preset_params(preset).items():
            assert set(values) <= set(checks[check_id].meta.params), (preset, check_id)


def test_a_preset_overrides_the_parents_and_yields_to_its_own_layer(tmp_path: Path) -> None:
    # seed-hardened writes the guide's two-suite allowlist; the preset replaces it
    child = tmp_path / "child.yaml"
    child.write_text("name: c\nextends: seed-hardened\ntls_policy: mozilla-intermediate\n"
                     "params:\n  http.hsts: {min_max_age: 99999999}\n")
    profile = load_profile(str(child))
    assert len(profile.params["tls.ciphers"]["allowed_tls12_ciphers"]) == 9
    assert profile.params["http.hsts"] == {"min_max_age": 99999999}
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text(f"name: g\nextends: {child}\nparams:\n  tls.protocols: {{allowed_protocols: [TLSv1.3]}}\n")
    assert load_profile(str(grandchild)).params["tls.protocols"] == {"allowed_protocols": ["TLSv1.3"]}
    assert load_profile(str(grandchild)).tls_policy == "mozilla-intermediate"


def test_an_unknown_preset_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ntls_policy: mozilla-old\n")
    with pytest.raises(UsageError, match="tls_policy"):
        load_profile(str(bad))
    proc = subprocess.run(["regaudit", "evaluate", str(FIXTURES / "lab-weak" / "outside.json"), "--profile", str(bad),
                           "--format", "json", "--output", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
