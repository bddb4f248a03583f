"""Profiles: which checks run, with which parameters, severities and waivers.

A profile is YAML validated by `auditor/schemas/profile.schema.json`. `extends:` names a
built-in profile or a file relative to the extending one; the child's `select`, `warn_as_fail`
and `fail_on` replace the parent's, `skip` and `waivers` add up, `params` and `severity` merge
per check. `tls_policy:` (auditor/tlspolicy) sets the parameters of the TLS checks from a published
policy, over the parents' parameters; parameters written beside it or in a child still win.
Errors are UsageError naming the file, where in it, and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from auditor import bounded
from auditor.catalog import CheckCatalog, CheckInfo, check_infos, json_kind
from auditor.checkapi import Check
from auditor.errors import UsageError
from auditor.model import CheckMeta, Severity
from auditor.tlspolicy import describe, preset_params

BUILTIN_PACKAGE = "auditor.profiles"
DEFAULT_PROFILE = "seed-hardened"


@dataclass(frozen=True)
class Waiver:
    """An accepted risk: check id (glob), subject glob, reason, owner, expiry date (inclusive)."""

    check: str
    subject: str
    reason: str
    owner: str
    expires: dt.date

    def covers(self, check_id: str, subject: str) -> bool:
        return fnmatch.fnmatchcase(check_id, self.check) and fnmatch.fnmatchcase(subject, self.subject)

    def expired(self, now: dt.datetime) -> bool:
        return now.date() > self.expires

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "subject": self.subject,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


@dataclass(frozen=True)
class Profile:
    """A resolved profile (its `extends` chain merged)."""

    name: str
    description: str = ""
    benchmark: str = ""
    source: str = ""
    digest: str = ""
    select: tuple[str, ...] = ("*",)
    skip: tuple[str, ...] = ()
    warn_as_fail: bool = False
    fail_on: Severity | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    severity: Mapping[str, Severity] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    chain: tuple[str, ...] = ()
    tls_policy: str | None = None

    def selects(self, meta: Selectable) -> bool:
        return matches_any(meta, self.select) and not matches_any(meta, self.skip)

    def params_for(self, meta: CheckMeta) -> dict[str, Any]:
        merged = dict(meta.params)
        merged.update(self.params.get(meta.id, {}))
        return merged

    def severity_for(self, meta: CheckMeta) -> Severity:
        return self.severity.get(meta.id, meta.severity)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "benchmark": self.benchmark,
            "source": self.source,
            "sha256": self.digest,
            "extends_chain": list(self.chain),
            "tls_policy": tls_policy_json(self.tls_policy),
            "select": list(self.select),
            "skip": list(self.skip),
            "warn_as_fail": self.warn_as_fail,
            "fail_on": self.fail_on.label if self.fail_on else None,
            "params": {k: dict(v) for k, v in sorted(self.params.items())},
            "severity": {k: v.label for k, v in sorted(self.severity.items())},
            "waivers": [w.to_json() for w in self.waivers],
        }


def tls_policy_json(name: str | None) -> dict[str, Any] | None:
    """The profile's TLS policy preset and where its values come from (None without one)."""
    return describe(name) if name else None


class Selectable(Protocol):
    """What selection reads of a check: a CheckMeta or an auditor.catalog.CheckInfo."""

    @property
    def id(self) -> str: ...

    @property
    def area(self) -> str: ...


def matches(meta: Selectable, pattern: str) -> bool:
    """A pattern is a check id, a glob over ids (`tls.*`), or an area name (`tls`, `area:tls`)."""
    if pattern.startswith("area:"):
        return meta.area == pattern[5:]
    if "." not in pattern and not any(c in pattern for c in "*?["):
        return meta.area == pattern
    return fnmatch.fnmatchcase(meta.id, pattern)


def matches_any(meta: Selectable, patterns: Iterable[str]) -> bool:
    return any(matches(meta, p) for p in patterns)


def builtin_names() -> list[str]:
    files = resources.files(BUILTIN_PACKAGE)
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _schema() -> dict[str, Any]:
    text = resources.files("auditor").joinpath("schemas/profile.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _read(ref: str, base: Path | None) -> tuple[str, str, Path | None]:
    """Return (source label, text, directory) for a profile name or path."""
    candidate = Path(ref) if base is None or Path(ref).is_absolute() else base / ref
    looks_like_path = ref.endswith((".yaml", ".yml", ".json")) or "/" in ref
    if looks_like_path or candidate.is_file():
        try:
            return str(candidate), bounded.read_text(candidate, what="profile", max_bytes=4 * 1024 * 1024), \
                candidate.parent
        except bounded.InputError as exc:
            raise UsageError(f"cannot read {exc}") from None
    if ref in builtin_names():
        text = resources.files(BUILTIN_PACKAGE).joinpath(f"{ref}.yaml").read_text(encoding="utf-8")
        return f"builtin:{ref}", text, None
    raise UsageError(f"unknown profile {ref!r}: not a file, and not one of {', '.join(builtin_names())}")


def _parse(source: str, text: str) -> dict[str, Any]:
    try:
        if source.startswith("builtin:"):  # shipped, trusted: libyaml (the bounded loader is pure Python)
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            data = bounded.load_yaml(text, f"profile {source}")
    except bounded.InputError as exc:
        raise UsageError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"profile {source}:{where}: invalid YAML: {problem}") from None
    except ValueError as exc:
        raise UsageError(f"profile {source}: invalid YAML value: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"profile {source}: must be a YAML mapping, not {type(data).__name__}")
    if source.startswith("builtin:"):
        return data  # shipped profiles are validated by the test suite (tests/unit/test_startup.py)
    import jsonschema  # loaded for a user's profile file only (start-up cost)

    validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(_plain(data)), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        raise UsageError(f"profile {source}: at {where}: {err.message}")
    return data


def _plain(data: Any) -> Any:
    """YAML dates become ISO strings so the JSON Schema sees what the user wrote."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, dt.date):
        return data.isoformat()
    return data


def load_profile(ref: str, checks: Mapping[str, Check] | None = None) -> Profile:
    """Load, validate and resolve a profile by built-in name or path; UsageError when bad."""
    layers: list[tuple[str, dict[str, Any]]] = []
    seen: list[str] = []
    base: Path | None = None
    current: str | None = ref
    while current is not None:
        source, text, directory = _read(current, base)
        if source in seen:
            raise UsageError(f"profile {source}: extends loop: {' -> '.join([*seen, source])}")
        seen.append(source)
        data = _plain(_parse(source, text))
        layers.append((source, data))
        current = data.get("extends")
        base = directory
    profile = _merge(layers)
    if checks is not None:
        validate_against_checks(profile, checks)
    return profile


def _merge(layers: list[tuple[str, dict[str, Any]]]) -> Profile:
    merged: dict[str, Any] = {"select": ["*"], "skip": [], "params": {}, "severity": {}, "waivers": []}
    for _source, data in reversed(layers):
        for key in ("name", "description", "benchmark", "warn_as_fail", "fail_on", "select", "tls_policy"):
            if key in data:
                merged[key] = data[key]
        if data.get("tls_policy"):  # the preset's values replace the parents' for the checks it drives
            for check_id, values in preset_params(data["tls_policy"]).items():
                merged["params"][check_id] = {**merged["params"].get(check_id, {}), **values}
        merged["skip"] = [*merged["skip"], *data.get("skip", [])]
        merged["waivers"] = [*merged["waivers"], *[(w, _source) for w in data.get("waivers", [])]]
        for check_id, values in data.get("params", {}).items():
            merged["params"][check_id] = {**merged["params"].get(check_id, {}), **values}
        merged["severity"].update(data.get("severity", {}))
    canonical = json.dumps({k: v for k, v in merged.items() if k != "waivers"} | {
        "waivers": [w for w, _ in merged["waivers"]]
    }, sort_keys=True, default=str)
    waivers = []
    for raw, source in merged["waivers"]:
        try:
            expires = dt.date.fromisoformat(raw["expires"])
        except ValueError:
            raise UsageError(f"profile {source}: waiver for {raw['check']}: bad date {raw['expires']!r}") from None
        waivers.append(Waiver(raw["check"], raw.get("subject", "*"), raw["reason"], raw["owner"], expires))
    return Profile(
        name=merged["name"],
        description=merged.get("description", ""),
        benchmark=merged.get("benchmark", ""),
        source=layers[0][0],
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        select=tuple(merged["select"]),
        skip=tuple(merged["skip"]),
        warn_as_fail=bool(merged.get("warn_as_fail", False)),
        fail_on=Severity.parse(merged["fail_on"]) if merged.get("fail_on") else None,
        params=merged["params"],
        severity={k: Severity.parse(v) for k, v in merged["severity"].items()},
        waivers=tuple(waivers),
        chain=tuple(source for source, _ in layers),
        tls_policy=merged.get("tls_policy"),
    )


def validate_against_checks(profile: Profile, checks: Mapping[str, Check]) -> list[str]:
    """Raise UsageError for unknown parameters or wrong types; return warnings (unknown ids).

    Reads the checks' infos: a catalog's check modules are not imported (auditor/catalog.py) unless the
    index finds something to say, which is then confirmed on the checks themselves."""
    if not isinstance(checks, CheckCatalog) or checks.complete:
        return _validate(profile, check_infos(checks))
    try:
        if not _validate(profile, checks.infos):
            return []
    except UsageError:
        pass
    checks.load_all()
    return _validate(profile, checks.infos)


def _validate(profile: Profile, infos: Mapping[str, CheckInfo]) -> list[str]:
    warnings: list[str] = []
    for check_id, values in profile.params.items():
        item = infos.get(check_id)
        if item is None:
            warnings.append(f"profile {profile.source}: params for unknown check {check_id!r}")
            continue
        for key, value in values.items():
            if key not in item.params:
                known = ", ".join(sorted(item.params)) or "none"
                raise UsageError(
                    f"profile {profile.source}: at params.{check_id}.{key}: unknown parameter (known: {known})"
                )
            kind = item.params[key]  # None: the default is null, any value goes
            if kind is not None and value is not None and kind != json_kind(value):
                raise UsageError(
                    f"profile {profile.source}: at params.{check_id}.{key}: expected a {kind}, got {value!r}"
                )
    for pattern in (*profile.select, *profile.skip, *profile.severity):
        if pattern != "*" and not any(matches(i, pattern) for i in infos.values()):
            warnings.append(f"profile {profile.source}: {pattern!r} matches no installed check")
    return warnings
