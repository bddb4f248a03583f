"""Generators whose output is not installed by apply: policies, CI jobs, scheduled scripts.

Checks on content (unsigned tags, missing or stale scans, vulnerabilities), on the cluster and
on storage cannot be fixed by a config: they get these artifacts plus their steps as text.
"""

from __future__ import annotations

from .model import Artifact, Plan, TextRemedy
from .render import render
from .site import Site

SCAN_SCRIPT = "/usr/local/sbin/registry-scan.sh"
GC_SCRIPT = "/usr/local/sbin/registry-gc.sh"
ALERT_SCRIPT = "/usr/local/sbin/registry-storage-alert.sh"

TEXTS = {
    "signatures.present": "Sign every tag's digest with the trusted cosign key (cosign sign --key ... "
    "REGISTRY/REPO@DIGEST) and make CI sign on push (cosign-ci/ jobs). Tags nobody can vouch for: delete them.",
    "signatures.valid": "Re-sign the listed digests with a trusted key (the signature must name this exact digest "
    "and repository); remove signatures made with untrusted keys or replayed from other digests.",
    "scans.present": "Scan the listed tags (trivy image) and install the nightly scan job (scan-script/).",
    "scans.fresh": "Re-scan the listed tags and install the nightly scan job (scan-script/) so scans stay "
    "younger than the profile's maximum age.",
    "scans.digest-match": "The tag was re-pushed after its scan: re-scan it (the nightly job does this).",
    "scans.severity": "Rebuild the listed images on patched base images / packages, push, re-scan; or add a "
    "reviewed, expiring waiver. No config removes a vulnerability.",
    "storage.usage": "Free space: run garbage collection (gc-script/) after deleting unneeded tags, or grow the "
    "volume; install the storage alert (storage-alert/).",
    "storage.reclaimable": "Run the garbage-collection script (gc-script/) in a maintenance window.",
    "admission.policy": "Install Kyverno and apply the generated ClusterPolicy (kyverno/): it enforces the "
    "cosign signature on every Pod image from this registry.",
    "registry.stale-uploads": "With upload purging enabled (registry-config) the registry deletes uploads older "
    "than the purge age on its purge schedule (first run within an hour of a start); to clear them now, "
    "delete the listed _uploads/<uuid> directories while no push is in progress.",
    "auth.token-service": "Fix the token service: https realm, the registry's service name, no token for bad "
    "credentials, pull-only tokens unable to start uploads (see the check's evidence).",
}


def _text(site: Site, plan: Plan, check_id: str, generator: str | None) -> None:
    results = site.failing(check_id)
    if results:
        subjects = tuple(sorted({r.subject for r in results}))
        plan.texts.append(TextRemedy(check_id, subjects, TEXTS[check_id], generator))


def _host(site: Site) -> str:
    return site.hostname or "registry.example.com"


def cosign_ci(site: Site, plan: Plan) -> None:
    checks = ("signatures.present", "signatures.valid")
    if not any(site.failing(c) for c in checks):
        return
    for check_id in checks:
        _text(site, plan, check_id, "cosign-ci")
    host = _host(site)
    plan.artifacts.append(Artifact("cosign-ci/gitlab-ci.yml", render("gitlab-ci.yml.j2", "cosign-ci", checks,
                                                                     host=host).encode(),
                                   "cosign-ci", checks, "GitLab CI job: push, sign the digest, verify"))
    plan.artifacts.append(Artifact("cosign-ci/github-actions.yml", render("github-actions.yml.j2", "cosign-ci",
                                                                          checks, host=host).encode(),
                                   "cosign-ci", checks, "GitHub Actions workflow: build, push, sign the digest"))


def scan_script(site: Site, plan: Plan) -> None:
    checks = ("scans.present", "scans.fresh", "scans.digest-match", "scans.severity")
    if not any(site.failing(c) for c in checks):
        return
    for check_id in checks:
        _text(site, plan, check_id, "scan-script")
    paths = (site.target.get("paths") or {})
    scan_dir = paths.get("scan_dir") or "/var/log/registry-scans"
    values = {"host": _host(site), "scan_dir": scan_dir, "script_path": SCAN_SCRIPT}
    for name, template, purpose, mode in (
        ("scan-script/registry-scan.sh", "registry-scan.sh.j2", f"the nightly scan (install as {SCAN_SCRIPT})",
         0o755),
        ("scan-script/registry-scan.service", "registry-scan.service.j2", "systemd service", 0o644),
        ("scan-script/registry-scan.timer", "registry-scan.timer.j2", "systemd timer (nightly)", 0o644),
        ("scan-script/registry-scan.cron", "registry-scan.cron.j2", "cron entry (without systemd)", 0o644),
    ):
        plan.artifacts.append(Artifact(name, render(template, "scan-script", checks, **values).encode(),
                                       "scan-script", checks, purpose, mode))


def gc_script(site: Site, plan: Plan) -> None:
    checks = ("storage.reclaimable",)
    if not site.failing("storage.reclaimable"):
        return
    _text(site, plan, "storage.reclaimable", "gc-script")
    plan.artifacts.append(Artifact("gc-script/registry-gc.sh", gc_text(site, checks).encode(), "gc-script", checks,
                                   f"garbage collection in read-only mode (install as {GC_SCRIPT})", 0o755))


def gc_text(site: Site, checks: tuple[str, ...]) -> str:
    registry = site.discovery("registry")
    config = registry.get("config") or (site.value("config.registry") or {}).get("path") or \
        "/etc/docker/registry/config.yml"
    exe = str(registry.get("exe") or "/usr/bin/docker-registry")
    binary = "docker-registry" if exe.endswith("docker-registry") else exe
    return render("registry-gc.sh.j2", "gc-script", checks, config=config, binary=binary,
                  restart="systemctl restart docker-registry")


def storage_alert(site: Site, plan: Plan) -> None:
    checks = ("storage.usage",)
    if not site.failing("storage.usage"):
        return
    _text(site, plan, "storage.usage", "storage-alert")
    root = (site.value("storage.filesystem") or {}).get("path") or "/var/lib/registry"
    text = render("storage-alert.sh.j2", "storage-alert", checks, root=root, script_path=ALERT_SCRIPT,
                  max_percent=int(site.params("storage.usage").get("max_percent", 85)))
    plan.artifacts.append(Artifact("storage-alert/registry-storage-alert.sh", text.encode(), "storage-alert", checks,
                                   f"storage alert (install as {ALERT_SCRIPT}, hourly)", 0o755))


def kyverno_policy(site: Site, plan: Plan) -> None:
    checks = ("admission.policy",)
    if not site.failing("admission.policy"):
        return
    _text(site, plan, "admission.policy", "kyverno-policy")
    keys = [k.get("pem") for k in (site.value("signatures.trust") or {}).get("keys") or [] if k.get("pem")]
    if not keys:
        plan.notes.append("kyverno-policy: no trusted cosign public key given (--cosign-key): policy not generated")
        return
    text = render("kyverno-policy.yaml.j2", "kyverno-policy", checks, host=_host(site), keys=keys)
    plan.artifacts.append(Artifact("kyverno/verify-image-signatures.yaml", text.encode(), "kyverno-policy", checks,
                                   "Kyverno ClusterPolicy (kubectl apply -f)"))


def text_only(site: Site, plan: Plan, check_id: str, generator: str | None) -> None:
    if check_id in TEXTS:
        _text(site, plan, check_id, generator)
