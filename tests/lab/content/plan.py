"""What the lab's registry holds: repositories, tags, how each is signed and scanned.

Contract: `plan(profile)` returns the ordered `TagSpec`s for a content profile. `hardened`,
`token` and `firewall` get the same, clean content; `weak` adds exactly one tag per seeded
content defect (`TagSpec.defect` names the catalog check it must fail, and nothing else on that
tag is wrong). SPEC.md documents the same table for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Signing modes
LEGACY = "legacy"                  # cosign sign --key (sha256-<hex>.sig), trusted key
BUNDLE = "bundle"                  # cosign 3 bundle, referrers tag schema, bare index entry
BUNDLE_ANNOTATED = "bundle-annotated"  # same, index entry with annotations (ggcr#2441)
UNSIGNED = "unsigned"
UNTRUSTED = "untrusted"            # legacy scheme, untrusted key
WRONG_DIGEST = "wrong-digest"      # legacy scheme, trusted key, payload names another digest

# Scan modes
FRESH = "fresh"
STALE = "stale"                    # CreatedAt and mtime 10 days before populate
OLD_DIGEST = "old-digest"          # tag re-pushed after the scan: RepoDigests names the old one
NONE = "none"


@dataclass(frozen=True)
class TagSpec:
    """One tag to push. `same_as` reuses another tag's image (same digest)."""

    repo: str
    tag: str
    oci: bool = True
    platforms: tuple[str, ...] = ("amd64",)
    big_layer: bool = False
    sign: str = LEGACY
    scan: str = FRESH
    severities: tuple[str, ...] = ()
    same_as: str = ""
    replay_from: str = ""          # WRONG_DIGEST: the tag whose digest the payload names
    defect: str = ""               # catalog check this tag must fail ("" = passes all six)
    defect_id: str = ""            # the defect's id in tests/lab/defects/weak.yaml
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def multi_platform(self) -> bool:
        return len(self.platforms) > 1


HARDENED: tuple[TagSpec, ...] = (
    TagSpec("myapp/backend", "v1.0.0", oci=False, severities=("LOW",)),
    TagSpec("myapp/backend", "v1.1.0", oci=False, severities=("LOW", "MEDIUM")),
    TagSpec("myapp/backend", "latest", oci=False, same_as="v1.1.0", severities=("LOW", "MEDIUM")),
    TagSpec("myapp/frontend", "v2.0.0"),
    TagSpec("myapp/frontend", "v2.1.0", sign=BUNDLE, severities=("MEDIUM",),
            description="signed as a cosign 3 sigstore bundle (referrers tag schema)"),
    TagSpec("base/alpine", "3.19", oci=False),
    TagSpec("base/alpine", "3.20", platforms=("amd64", "arm64"), severities=("LOW",),
            description="multi-platform OCI index; the index digest is signed and scanned"),
    TagSpec("base/alpine", "3.21", sign=BUNDLE_ANNOTATED,
            description="cosign 3 bundle; fallback index entry carries the referrer's annotations"),
    TagSpec("tools/ml-model", "1.0", big_layer=True, severities=("MEDIUM",),
            description="150 MiB incompressible layer (tmpfs sizing)"),
    TagSpec("tools/ml-model", "1.1", big_layer=True),
    TagSpec("prometheus", "v2.53.0", oci=False),
)

WEAK_EXTRA: tuple[TagSpec, ...] = (
    TagSpec("myapp/backend", "v1.2.0-unsigned", oci=False, sign=UNSIGNED,
            defect_id="unsigned-tag", defect="signatures.present",
            description="no signature of any scheme"),
    TagSpec("myapp/backend", "v1.2.1-replayed", oci=False, sign=WRONG_DIGEST, replay_from="v1.0.0",
            defect_id="signature-wrong-digest", defect="signatures.valid",
            description="trusted-key signature whose payload names myapp/backend:v1.0.0's digest"),
    TagSpec("myapp/frontend", "v2.2.0-untrusted", sign=UNTRUSTED,
            defect_id="signature-untrusted-key", defect="signatures.valid",
            description="signed by the untrusted key (lab.json cosign.untrusted_public_key)"),
    TagSpec("base/alpine", "3.18-noscan", oci=False, scan=NONE,
            defect_id="scan-missing", defect="scans.present",
            description="no scan report in the scan directory"),
    TagSpec("base/alpine", "3.17-stale", oci=False, scan=STALE,
            defect_id="scan-stale", defect="scans.fresh",
            description="scan CreatedAt (and mtime) 10 days before populate"),
    TagSpec("prometheus", "v2.54.0-repushed", oci=False, scan=OLD_DIGEST,
            defect_id="scan-digest-mismatch", defect="scans.digest-match",
            description="tag re-pushed after its scan; RepoDigests names the previous digest"),
    TagSpec("myapp/backend", "v0.9.0-critical", oci=False, severities=("LOW", "CRITICAL"),
            defect_id="scan-critical", defect="scans.severity",
            description="scan reports a CRITICAL vulnerability"),
)


def plan(profile: str) -> tuple[TagSpec, ...]:
    """The tags for a content profile (hardened, weak, token, firewall)."""
    if profile == "weak":
        return HARDENED + WEAK_EXTRA
    if profile in ("hardened", "token", "firewall"):
        return HARDENED
    raise ValueError(f"unknown content profile {profile!r}")
