"""Shared pytest fixtures: the lab variants (tests/lab), session-scoped, and the `integration` marker.

Fixtures `lab_hardened`, `lab_weak`, `lab_token`, `lab_firewall` each yield a `lab.LabInfo` for a
running variant with its content. They skip (with the reason) only when this machine cannot build
labs (not root, no `ip netns`); any other failure to bring a variant up is an error.

Sharing: several pytest sessions may use the same variant at once. Each session holds a lease
(<lab root>/.leases-<variant>/<pid>, kept locked with flock for the session's life); at session end
the variant is torn down only when no other session holds a lease and a fixture (not a person,
with `labctl up`) brought it up. A lease is held while its lock is: the kernel drops the lock when
its process dies, so a lease left by a killed session never blocks a teardown, even once its
process id belongs to another process.
REGAUDIT_LAB_KEEP=1 keeps variants running after the session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import lab  # noqa: E402  (needs TESTS_DIR on sys.path)

pytest_plugins = ["secretscan"]  # every regaudit CLI run is scanned for leaked credentials
from lab import leases  # noqa: E402
from lab.paths import lab_root  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: runs against the real lab (network namespaces, real services); needs root")


def _created_at(variant: str) -> str | None:
    """created_at of the variant's lab.json if it is up now (None otherwise)."""
    if not lab.is_up(variant):
        return None
    try:
        return str(lab.load(variant).raw.get("created_at"))
    except (OSError, ValueError):
        return None


def _lab_session(variant: str, content: bool = True) -> Iterator[lab.LabInfo]:
    reason = lab.available()
    if reason:
        pytest.skip(f"lab {variant}: {reason}")
    folder = lab_root() / f".leases-{variant}"
    marker = lab_root() / f".fixture-{variant}"
    mine = leases.take(folder)
    try:
        before = _created_at(variant)
        info = lab.up(variant, content=content)
        if info.raw.get("created_at") != before or not before:
            marker.touch()  # a fixture built it, so a fixture may tear it down
        yield info
    finally:
        leases.release(mine)
        if not leases.others_holding(folder) and marker.exists() and os.environ.get("REGAUDIT_LAB_KEEP") != "1":
            lab.down(variant)
            marker.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def lab_hardened() -> Iterator[lab.LabInfo]:
    """The hardened variant (everything as the guide says), up with content."""
    yield from _lab_session("hardened")


@pytest.fixture(scope="session")
def lab_weak() -> Iterator[lab.LabInfo]:
    """The weak variant (seeded defects: tests/lab/defects/weak.yaml), up with content."""
    yield from _lab_session("weak")


@pytest.fixture(scope="session")
def lab_token() -> Iterator[lab.LabInfo]:
    """The token-auth variant (registry auth: token, lab token service), up with content."""
    yield from _lab_session("token")


@pytest.fixture(scope="session")
def lab_firewall() -> Iterator[lab.LabInfo]:
    """The firewall variant (registry on 10.0.0.10:5000 and [fd00::10]:5000 behind the rules)."""
    yield from _lab_session("firewall")


@pytest.fixture(scope="session")
def lab_container_hardened() -> Iterator[lab.LabInfo]:
    """The registry and nginx in containers on a real Docker Engine, hardened (tests/lab/containers.py)."""
    yield from _lab_session("container-hardened")


@pytest.fixture(scope="session")
def lab_container_weak() -> Iterator[lab.LabInfo]:
    """The containerised deployment with seeded defects (tests/lab/defects/container-weak.yaml)."""
    yield from _lab_session("container-weak")


# Issue 18: every proxy shape (tests/lab/variants.py), and a freshly deployed empty registry.
@pytest.fixture(scope="session")
def lab_nginx() -> Iterator[lab.LabInfo]:
    """nginx alone terminating TLS with auth_basic (the registry's documentation recipe), hardened."""
    yield from _lab_session("nginx")


@pytest.fixture(scope="session")
def lab_nginx_weak() -> Iterator[lab.LabInfo]:
    """nginx alone with seeded defects (tests/lab/defects/nginx-weak.yaml)."""
    yield from _lab_session("nginx-weak")


@pytest.fixture(scope="session")
def lab_apache() -> Iterator[lab.LabInfo]:
    """Apache alone terminating TLS and proxying straight to the registry (the guide's main path), hardened."""
    yield from _lab_session("apache")


@pytest.fixture(scope="session")
def lab_apache_weak() -> Iterator[lab.LabInfo]:
    """Apache alone with seeded defects (tests/lab/defects/apache-weak.yaml)."""
    yield from _lab_session("apache-weak")


@pytest.fixture(scope="session")
def lab_empty() -> Iterator[lab.LabInfo]:
    """The hardened stack freshly deployed: nothing pushed, the storage root never written to."""
    yield from _lab_session("empty")


@pytest.fixture(scope="session")
def lab_watch() -> Iterator[lab.LabInfo]:
    """The registry sends its notifications to a watcher on 127.0.0.1:9471 (continuous mode); no content."""
    yield from _lab_session("watch", content=False)
