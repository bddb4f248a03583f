"""Exceptions with a meaning for the engine and the CLI."""

from __future__ import annotations


class UsageError(Exception):
    """The user's input is wrong (profile, URL, a file they named): one clear line, exit code 2."""


class ProbeError(Exception):
    """A probe could not gather its evidence; the checks that need it become `error`."""


class NotApplicable(Exception):
    """The evidence does not apply to this deployment; the checks that need it become `skip`."""


class ProbeUnavailable(Exception):
    """Raised inside a check when evidence it needs failed: the runner turns it into `error`."""

    def __init__(self, probe: str, reason: str) -> None:
        super().__init__(f"{probe}: {reason}")
        self.probe = probe
        self.reason = reason


class EvidenceNotApplicable(Exception):
    """Raised inside a check when evidence it needs does not apply: the runner makes it `skip`."""

    def __init__(self, probe: str, reason: str) -> None:
        super().__init__(reason)
        self.probe = probe
        self.reason = reason


class PluginError(Exception):
    """A check, probe or report plugin is malformed (duplicate id, incomplete metadata)."""
