#!/usr/bin/env python3
"""Build the regaudit OCI image from a root filesystem of Debian binaries and PyPI wheels (no base image).

    python3 scripts/image/build.py --docker-host unix:///path/docker.sock [--out DIR] [--tag regaudit:VERSION]

Steps (docs/distribution.md): copy Debian's python3.11 (interpreter, standard library, the
shared libraries `ldd` names, CA certificates) into a fresh root; `pip install --target` regaudit
(from `git archive HEAD`) and its dependencies; compile bytecode with hash-based invalidation;
write a CycloneDX 1.5 SBOM of every Debian package and Python distribution in the root; pack the
root as a tar with sorted names, fixed owners and mtimes (SOURCE_DATE_EPOCH, default: the last
commit's time), so two builds of one commit give the same bytes; `docker import` it with the
entrypoint, environment and OCI labels. Prints one JSON line: the image id, the rootfs tar's
sha256, sizes, and the SBOM path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3.11"
STDLIB = Path("/usr/lib/python3.11")
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "__pycache__",
               "config-3.11-x86_64-linux-gnu"}
SITE = "/opt/regaudit/site-packages"
SBOM_PATH = "/usr/share/doc/regaudit/sbom.cdx.json"
UID = 10001
DOCKER = "/usr/bin/docker"  # Debian's client


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def source_date_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    return int(run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"]).stdout.strip())


def copy(src: str, root: Path) -> None:
    real = os.path.realpath(src)
    target = root / src.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(real, target)


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def libraries(binary: Path) -> set[str]:
    """The shared libraries `ldd` resolves for an ELF file (host paths)."""
    cp = subprocess.run(["ldd", str(binary)], text=True, capture_output=True)
    libs = set()
    for line in cp.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.add(parts[2])
        elif parts and parts[0].startswith("/"):
            libs.add(parts[0])
    return libs


def base(root: Path) -> None:
    for d in ("etc/ssl/certs", "tmp", "workspace", "run", "proc", "sys", "dev", "usr/bin", "usr/share/doc/regaudit"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "workspace", 0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/false\n"
                                     f"regaudit:x:{UID}:{UID}:regaudit:/workspace:/bin/false\n")
    (root / "etc/group").write_text(f"root:x:0:\nregaudit:x:{UID}:\n")
    (root / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")


def python_runtime(root: Path) -> None:
    copy(PYTHON, root)
    (root / "usr/bin/python3").symlink_to("python3.11")
    for path in STDLIB.iterdir():
        if path.name in STDLIB_SKIP or path.name == "site-packages" or path.name == "dist-packages":
            continue
        target = root / str(path).lstrip("/")
        if path.is_dir():
            shutil.copytree(path, target, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def regaudit_packages(root: Path, work: Path) -> None:
    """regaudit from the committed tree (`git archive HEAD`: no stale build/ or uncommitted file), and
    its dependencies."""
    source = work / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    target = root / SITE.lstrip("/")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-warn-script-location",
                    "--target", str(target), str(source)], check=True)
    shutil.rmtree(source, ignore_errors=True)
    # pip records where it installed from (a temporary path): not part of a reproducible image
    for direct_url in target.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()
        record = direct_url.with_name("RECORD")
        if record.exists():
            lines = [ln for ln in record.read_text().splitlines(keepends=True) if "/direct_url.json," not in ln]
            record.write_text("".join(lines))
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts point at the build's interpreter


def shared_libraries(root: Path) -> None:
    wanted: set[str] = set()
    for elf in elf_files(root):
        wanted |= libraries(elf)
    for lib in sorted(wanted):
        copy(lib, root)


def compile_bytecode(root: Path, epoch: int) -> None:
    """Hash-based .pyc (no mtimes inside), so the bytes do not depend on the build time."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    for tree in (root / str(STDLIB).lstrip("/"), root / SITE.lstrip("/")):
        subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                        "-d", "/" + str(tree.relative_to(root)), str(tree)], env=env, check=False)


def dpkg_owners() -> dict[str, str]:
    """Every file dpkg knows -> its package (read once from /var/lib/dpkg/info/*.list)."""
    owners: dict[str, str] = {}
    for listing in Path("/var/lib/dpkg/info").glob("*.list"):
        package = listing.name[:-5].split(":")[0]
        for line in listing.read_text(errors="replace").splitlines():
            owners[line] = package
    return owners


def debian_packages(root: Path) -> dict[str, str]:
    """Debian package -> version for every file copied from the host."""
    known = dpkg_owners()
    found: set[str] = set()
    for path in root.rglob("*"):
        rel = "/" + str(path.relative_to(root))
        if not path.is_file() or rel.startswith((SITE, "/etc/", "/usr/share/doc")):
            continue
        for candidate in (rel, os.path.realpath(rel), rel.replace("/usr/lib/", "/lib/", 1)):
            if candidate in known:
                found.add(known[candidate])
                break
    return {name: run(["dpkg-query", "-W", "-f=${Version}", name]).stdout.strip() for name in sorted(found)}


def python_distributions(root: Path) -> list[tuple[str, str, str]]:
    import importlib.metadata as md

    out = []
    for dist in md.distributions(path=[str(root / SITE.lstrip("/"))]):
        name = dist.metadata["Name"]
        license_text = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
        out.append((name, dist.version, license_text if len(license_text) < 100 else ""))
    return sorted(out, key=lambda t: t[0].lower())


def sbom(root: Path, version: str, epoch: int) -> str:
    """CycloneDX 1.5 JSON of the image: Debian packages and Python distributions, deterministic."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot5
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.timestamp = datetime.fromtimestamp(epoch, UTC)
    bom.metadata.component = Component(name="regaudit", version=version, type=ComponentType.CONTAINER,
                                       bom_ref="regaudit-image")
    for name, deb_version in sorted(debian_packages(root).items()):
        purl = PackageURL(type="deb", namespace="debian", name=name, version=deb_version,
                          qualifiers={"arch": "amd64", "distro": "debian-12"})
        bom.components.add(Component(name=name, version=deb_version, type=ComponentType.LIBRARY, purl=purl,
                                     bom_ref=purl.to_string()))
    for name, dist_version, license_text in python_distributions(root):
        purl = PackageURL(type="pypi", name=name.lower().replace("_", "-"), version=dist_version)
        licenses = []
        if license_text:
            try:
                licenses = [LicenseExpression(license_text)] if " " in license_text else [
                    DisjunctiveLicense(name=license_text)]
            except ValueError:
                licenses = []
        component = Component(name=name, version=dist_version, type=ComponentType.LIBRARY, purl=purl,
                              bom_ref=purl.to_string(), licenses=licenses)
        bom.components.add(component)
    text = JsonV1Dot5(bom).output_as_string(indent=2)
    data = json.loads(text)
    data["serialNumber"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(
        json.dumps(data["components"], sort_keys=True).encode()).hexdigest()))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def pack(root: Path, out: Path, epoch: int) -> str:
    """A tar of `root` with sorted names, uid/gid 0 (the work dirs 1777), mtimes = epoch; returns sha256."""
    def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = epoch
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(root.rglob("*"), key=lambda p: str(p.relative_to(root)))
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=normalize)
    digest = hashlib.sha256()
    with open(out, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docker-host", help="the engine's socket (unix:///...); without it, only the tar is built")
    parser.add_argument("--out", default=str(REPO / "dist" / "image"), help="where the rootfs tar and SBOM go")
    parser.add_argument("--tag", help="image tag (default regaudit:VERSION)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from auditor import __version__

    epoch = source_date_epoch()
    revision = run(["git", "-C", str(REPO), "rev-parse", "HEAD"]).stdout.strip()
    out = Path(args.out)
    root = out / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    base(root)
    python_runtime(root)
    regaudit_packages(root, out)
    shared_libraries(root)
    compile_bytecode(root, epoch)
    bom_text = sbom(root, __version__, epoch)
    (root / SBOM_PATH.lstrip("/")).write_text(bom_text)
    (out / "sbom.cdx.json").write_text(bom_text)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, (epoch, epoch))
    tar_path = out / "rootfs.tar"
    tar_sha = pack(root, tar_path, epoch)
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": "regaudit",
        "org.opencontainers.image.description": "Compliance auditing scanner for self-hosted Docker registries",
        "org.opencontainers.image.version": __version__,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.source": "https://github.com/regaudit/regaudit",
        "dev.regaudit.sbom": SBOM_PATH,
        "dev.regaudit.sbom.sha256": hashlib.sha256(bom_text.encode()).hexdigest(),
        "dev.regaudit.rootfs.sha256": tar_sha,
    }
    result = {"rootfs_tar": str(tar_path), "rootfs_sha256": tar_sha, "rootfs_bytes": tar_path.stat().st_size,
              "sbom": str(out / "sbom.cdx.json"), "components": len(json.loads(bom_text)["components"]),
              "source_date_epoch": epoch, "labels": labels}
    if args.docker_host:
        tag = args.tag or f"regaudit:{__version__}"
        changes = [f"ENV PYTHONPATH={SITE}", "ENV PYTHONDONTWRITEBYTECODE=1", "ENV LANG=C.UTF-8",
                   "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                   "ENV REGAUDIT_STATE_DIR=/workspace/.regaudit",
                   'ENTRYPOINT ["/usr/bin/python3", "-m", "auditor"]', 'CMD ["--help"]', "WORKDIR /workspace",
                   f"USER {UID}:{UID}"]
        changes += [f'LABEL {key}="{value}"' for key, value in labels.items()]
        argv = [DOCKER, "-H", args.docker_host, "import"]
        for change in changes:
            argv += ["--change", change]
        with open(tar_path, "rb") as handle:
            cp = subprocess.run([*argv, "-", tag], stdin=handle, capture_output=True, text=True)
        if cp.returncode != 0:
            print(f"docker import failed: {cp.stderr.strip()}", file=sys.stderr)
            return 1
        inspect = json.loads(run([DOCKER, "-H", args.docker_host, "image", "inspect", tag]).stdout)[0]
        result.update({"image": tag, "image_id": inspect["Id"], "layers": inspect["RootFS"]["Layers"],
                       "image_bytes": inspect["Size"]})
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
