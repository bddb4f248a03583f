"""Registry credentials: from the environment, a file, or Docker's config.json; never argv.

The password is held in a :class:`Secret` whose repr and str never reveal it, so it cannot end
up in a report, a log line or an evidence file by accident.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from auditor import bounded
from auditor.errors import UsageError


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    """A username and password for the registry, and where they came from (for the report)."""

    username: str
    password: Secret
    source: str


def load_credentials(
    host: str | None,
    password_file: str | None = None,
    username: str | None = None,
    docker_config: str | None = None,
    env: dict[str, str] | None = None,
) -> Credentials | None:
    """Find credentials for `host`, in order: --password-file, environment, Docker's config.json.

    Raises UsageError when a source the user named is unusable (missing file, bad format).
    """
    environ = env if env is not None else dict(os.environ)
    user = username or environ.get("REGAUDIT_USERNAME")
    if password_file:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read password file {password_file}: {exc.strerror}") from None
        password = text.rstrip("\r\n")
        if not user:
            raise UsageError("--password-file needs a user name: set REGAUDIT_USERNAME or --username")
        return Credentials(user, Secret(password), f"password file {password_file}")
    if environ.get("REGAUDIT_PASSWORD") is not None:
        if not user:
            raise UsageError("REGAUDIT_PASSWORD is set but REGAUDIT_USERNAME is not")
        return Credentials(user, Secret(environ["REGAUDIT_PASSWORD"]), "environment")
    if host:
        return _from_docker_config(host, docker_config, environ)
    return None


def docker_config_path(explicit: str | None, environ: dict[str, str]) -> Path:
    if explicit:
        return Path(explicit)
    base = environ.get("DOCKER_CONFIG") or str(Path(environ.get("HOME", "~")).expanduser() / ".docker")
    return Path(base) / "config.json"


def _from_docker_config(host: str, explicit: str | None, environ: dict[str, str]) -> Credentials | None:
    path = docker_config_path(explicit, environ)
    if not path.exists():
        if explicit:
            raise UsageError(f"Docker config {path} does not exist")
        return None
    try:
        config = bounded.load_json_file(path, what="Docker config", max_bytes=4 * 1024 * 1024)
    except bounded.InputError as exc:
        raise UsageError(f"cannot read {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"Docker config {path} is not a JSON object")
    keys = _registry_keys(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _from_helper(str(helpers[key]), key, f"docker credential helper {helpers[key]}")
    auths = config.get("auths") or {}
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise UsageError(f"Docker config {path}: the auth entry for {key} is not base64") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise UsageError(f"Docker config {path}: the auth entry for {key} has no ':'")
            return Credentials(user, Secret(password), f"docker config {path}")
    store = config.get("credsStore")
    if store:
        for key in keys:
            found = _from_helper(str(store), key, f"docker credential store {store}", missing_ok=True)
            if found:
                return found
    return None


def _registry_keys(host: str) -> list[str]:
    """The spellings `docker login` may have used for this registry."""
    bare = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    return [bare, f"https://{bare}", f"http://{bare}", f"https://{bare}/v1/", f"https://{bare}/v2/"]


def _from_helper(helper: str, server: str, source: str, missing_ok: bool = False) -> Credentials | None:
    """Run `docker-credential-<helper> get` with the server on stdin (never on argv)."""
    if not helper.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"Docker credential helper name {helper!r} is not valid")
    try:
        proc = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError(f"Docker credential helper docker-credential-{helper} is not installed") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"Docker credential helper docker-credential-{helper} timed out") from None
    if proc.returncode != 0:
        if missing_ok:
            return None
        raise UsageError(f"docker-credential-{helper} has no credentials for {server}")
    try:
        answer = bounded.load_json(proc.stdout, f"docker-credential-{helper} output", max_bytes=1024 * 1024)
        return Credentials(str(answer["Username"]), Secret(str(answer["Secret"])), source)
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"docker-credential-{helper} gave an unreadable answer") from None
