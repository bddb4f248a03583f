"""Unit-test fixtures: an isolated history store for every test session."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def isolated_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Audits run by unit tests record their history in a temporary store, never /var/lib/regaudit."""
    import os

    os.environ["REGAUDIT_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
