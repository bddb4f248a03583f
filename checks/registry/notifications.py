"""registry.notifications: the registry's notification endpoints are private and authenticated.

Judged on the config `config.registry` records (`notifications.endpoints`). Every enabled
endpoint must send over https, or over plain http only to a loopback address (the events never
leave the host), and carry an Authorization header: the events name every repository, tag and
digest pushed, and a receiver that accepts them unauthenticated can be fed forged ones. The
header's value is redacted in evidence; only its presence is judged. A disabled endpoint sends
nothing and is not judged. When the profile expects continuous mode (`expect_notifications`,
for `regaudit watch`), at least one enabled endpoint must exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from auditor.checkapi import Evidence, Outcome, Params, check, errored, failed, passed, skipped
from auditor.judge.netaddr import ListenAddr
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, raw, subject

EXPECTED = "https (or http to loopback) and an Authorization header"


@check(
    id="registry.notifications",
    title="Registry notification endpoints use https or loopback and authenticate",
    severity=Severity.MEDIUM,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="beyond the guide (continuous audits)",
    rationale="Notification events list every push (repository, tag, digest, who pushed): sent in clear they "
              "leak the registry's content and can be altered; without an Authorization header the receiver "
              "cannot tell the registry's events from forged ones. Continuous audits depend on them.",
    passes_when="each enabled notifications endpoint has an https URL (or an http URL on loopback) and an "
                "Authorization header; with expect_notifications, at least one enabled endpoint exists",
    remediation="Point each endpoint at an https URL (or a receiver on 127.0.0.1) and set headers: "
                "{Authorization: [Bearer TOKEN]} with the token the receiver checks; for continuous mode add "
                "an endpoint for `regaudit watch serve`. Restart the registry (it does not reload its config).",
    generator="registry-config",
    references=("NIST SP 800-190 4.2.1",),
    params={"expect_notifications": False},
)
def notifications(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    where = subject(facts)
    present, endpoints = raw(facts["config"], "notifications.endpoints")
    if present and endpoints is not None and not isinstance(endpoints, list):
        yield errored(where, f"notifications.endpoints is a {type(endpoints).__name__}, not a list")
        return
    judged = 0
    for index, endpoint in enumerate(endpoints or []):
        if isinstance(endpoint, Mapping) and endpoint.get("disabled") is True:
            yield skipped(f"{where} endpoint {endpoint.get('name') or index}",
                          "the endpoint is disabled: it sends nothing")
            continue
        judged += 1
        if not isinstance(endpoint, Mapping):
            yield errored(f"{where} notifications.endpoints[{index}]", "the endpoint is not a mapping")
        else:
            yield judge_endpoint(f"{where} endpoint {endpoint.get('name') or index}", endpoint)
    if judged:
        return
    expect = bool(params.get("expect_notifications", False))
    if expect:
        yield failed(where, "no enabled notification endpoint, and the profile expects continuous mode "
                     "(expect_notifications): pushes are not seen as they happen",
                     observed=f"{len(endpoints or [])} endpoint(s), none enabled",
                     expected="an enabled endpoint in notifications.endpoints")
    else:
        yield skipped(where, "no enabled notification endpoint, and the profile does not expect continuous "
                      "mode (expect_notifications is false)")


def judge_endpoint(name: str, endpoint: Mapping[str, Any]) -> Outcome:
    """One enabled endpoint: its transport and its Authorization header."""
    url = endpoint.get("url")
    if not isinstance(url, str) or not url.strip():
        return failed(name, "the endpoint has no url", observed=None, expected=EXPECTED)
    try:
        parts = urlsplit(url.strip())
        port = _port(parts)
    except ValueError as exc:  # an unbalanced [ ], a port that is not a number
        return failed(name, f"the endpoint url {url.strip()!r} is not a valid URL ({exc})", observed=url,
                      expected=EXPECTED)
    shown = f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}{parts.path}"
    problems = []
    scheme = parts.scheme.lower()
    if scheme == "http":
        if not ListenAddr(parts.hostname or "", None).loopback:
            problems.append(f"sends events in clear over http to {parts.hostname or 'an unnamed host'}")
    elif scheme != "https":
        problems.append(f"url {shown!r} is neither https nor http on loopback")
    if parts.username or parts.password:
        problems.append("the url carries credentials (use the Authorization header)")
    authorization = has_authorization(endpoint.get("headers"))
    if not authorization:
        problems.append("sends no Authorization header")
    observed = {"url": shown, "authorization": authorization}
    if problems:
        return failed(name, "; ".join(problems), observed=observed, expected=EXPECTED)
    how = "https" if scheme == "https" else "http on loopback"
    return passed(name, f"{shown}: {how}, with an Authorization header", observed=observed, expected=EXPECTED)


def has_authorization(headers: Any) -> bool:
    """Whether the endpoint's headers (YAML `{Name: [values]}`) set a non-empty Authorization."""
    if not isinstance(headers, Mapping):
        return False
    for key, value in headers.items():
        if str(key).strip().lower() != "authorization":
            continue
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and v.strip() for v in values):
            return True
    return False


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # a port out of range or not a number: the url is shown without it
        return None
