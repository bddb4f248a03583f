"""Trivy JSON reports as `trivy image --format json` writes them (SchemaVersion 2, trivy v0.74).

Contract: `report(...)` returns the report dict in trivy's field order (pkg/types/report.go and
the goldens in tests/fixtures/upstream/trivy: SchemaVersion, Trivy{Version}, ReportID (UUIDv7),
CreatedAt (RFC 3339 with nanoseconds), ArtifactID, ArtifactName, ArtifactType container_image,
Metadata{Size, OS, ImageID, DiffIDs, RepoTags, RepoDigests, Reference, ImageConfig, Layers},
Results[]); `write(...)` serialises it with Go's MarshalIndent and sets the file's mtime to
CreatedAt. File names follow the guide's scan script: `${repo////_}_${tag}.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .gojson import marshal_indent
from .oci import Image

TRIVY_VERSION = "0.74.0"
# go-containerregistry v1.Config field order: trivy re-marshals ImageConfig through it.
GO_CONFIG_ORDER = ("AttachStderr", "AttachStdin", "AttachStdout", "Cmd", "Healthcheck", "Domainname",
                   "Entrypoint", "Env", "Hostname", "Image", "Labels", "OnBuild", "OpenStdin",
                   "StdinOnce", "Tty", "User", "Volumes", "WorkingDir", "ExposedPorts", "ArgsEscaped",
                   "NetworkDisabled", "MacAddress", "StopSignal", "Shell")
SEVERITY_SCORES = {"LOW": 3.1, "MEDIUM": 5.3, "HIGH": 7.5, "CRITICAL": 9.8}


def scan_filename(repo: str, tag: str) -> str:
    """The guide's `${repo////_}_${tag}.json`."""
    return f"{repo.replace('/', '_')}_{tag}.json"


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{moment.microsecond:06d}000".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def uuid7(moment: datetime) -> str:
    """A UUIDv7 (RFC 9562) for `moment`, as trivy's ReportID."""
    ms = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    rand = secrets.randbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def vulnerability(vuln_id: str, pkg: str, installed: str, fixed: str, severity: str,
                  title: str, layer_digest: str, layer_diff_id: str) -> dict[str, Any]:
    """One DetectedVulnerability for an alpine package, trivy field order."""
    score = SEVERITY_SCORES[severity]
    return {
        "VulnerabilityID": vuln_id,
        "PkgID": f"{pkg}@{installed}",
        "PkgName": pkg,
        "PkgIdentifier": {
            "PURL": f"pkg:apk/alpine/{pkg}@{installed}?arch=x86_64&distro=3.20.3",
            "UID": hashlib.sha256(f"{pkg}@{installed}".encode()).hexdigest()[:16],
        },
        "InstalledVersion": installed,
        "FixedVersion": fixed,
        "Status": "fixed",
        "Layer": {"Digest": layer_digest, "DiffID": layer_diff_id},
        "SeveritySource": "nvd",
        "PrimaryURL": f"https://avd.aquasec.com/nvd/{vuln_id.lower()}",
        "DataSource": {"ID": "alpine", "Name": "Alpine Secdb", "URL": "https://secdb.alpinelinux.org/"},
        "Title": title,
        "Description": f"{title} (regaudit lab fixture).",
        "Severity": severity,
        "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": score}},
        "PublishedDate": "2026-06-01T12:00:00Z",
        "LastModifiedDate": "2026-07-01T12:00:00Z",
    }


def report(*, hostname: str, repo: str, tag: str, repo_digest: str, image: Image,
           created_at: datetime, severities: list[str]) -> dict[str, Any]:
    """A report for `hostname/repo:tag` resolved to `repo_digest`; one vuln per severity."""
    name = f"{hostname}/{repo}:{tag}"
    image_id = image.config.digest
    config = json.loads(image.config.data)
    inner = config.get("config") or {}
    config["config"] = {k: inner[k] for k in GO_CONFIG_ORDER if k in inner}
    first = image.layers[0]
    vulns = [
        vulnerability(f"CVE-2026-{40000 + i}", pkg, "1.2.3-r0", "1.2.4-r0", sev,
                      f"{pkg}: lab vulnerability of {sev.lower()} severity", first.digest, first.diff_id)
        for i, (sev, pkg) in enumerate(zip(severities, ["busybox", "libcrypto3", "musl", "zlib"] * 4,
                                           strict=False))
    ]
    result: dict[str, Any] = {
        "Target": f"{name} (alpine 3.20.3)",
        "Class": "os-pkgs",
        "Type": "alpine",
    }
    if vulns:
        result["Vulnerabilities"] = vulns
    artifact_id = "sha256:" + hashlib.sha256(f"{hostname}/{repo}@{image_id}".encode()).hexdigest()
    return {
        "SchemaVersion": 2,
        "Trivy": {"Version": TRIVY_VERSION},
        "ReportID": uuid7(created_at),
        "CreatedAt": rfc3339_nano(created_at),
        "ArtifactID": artifact_id,
        "ArtifactName": name,
        "ArtifactType": "container_image",
        "Metadata": {
            "Size": sum(layer.raw_size for layer in image.layers),
            "OS": {"Family": "alpine", "Name": "3.20.3"},
            "ImageID": image_id,
            "DiffIDs": [layer.diff_id for layer in image.layers],
            "RepoTags": [name],
            "RepoDigests": [f"{hostname}/{repo}@{repo_digest}"],
            "Reference": name,
            "ImageConfig": config,
            "Layers": [{"Size": layer.raw_size, "Digest": layer.digest, "DiffID": layer.diff_id}
                       for layer in image.layers],
        },
        "Results": [result],
    }


def write(scan_dir: Path, repo: str, tag: str, body: dict[str, Any], created_at: datetime) -> Path:
    """Write the report where the guide's script would, mtime = CreatedAt; returns the path."""
    scan_dir.mkdir(parents=True, exist_ok=True)
    path = scan_dir / scan_filename(repo, tag)
    path.write_bytes(marshal_indent(body) + b"\n")
    stamp = created_at.timestamp()
    os.utime(path, (stamp, stamp))
    return path
