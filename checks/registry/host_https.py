"""registry.host-https: Registry's external URL is https (judged on the effective config `config.registry` records)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from auditor.checkapi import Evidence, Outcome, Params, check, failed, passed
from auditor.model import Severity, Vantage

from ._config import NEEDS, config_facts, raw, subject


@check(
    id="registry.host-https",
    title="Registry's external URL is https",
    severity=Severity.LOW,
    area="registry",
    vantage=Vantage.INSIDE,
    needs=NEEDS,
    guide="Registry Configuration: http.host",
    rationale="The registry builds Location headers from http.host; an http or missing host sends clients "
    "(and their credentials) to plaintext or to whatever Host header an attacker sent.",
    passes_when="http.host is set and is an https URL",
    remediation="Set http.host: https://<your registry name> in config.yml.",
    generator="registry-config",
)
def host_https(ev: Evidence, params: Params) -> Iterator[Outcome]:
    facts = config_facts(ev)
    present, host = raw(facts["config"], "http.host")
    if not present or not host:
        yield failed(subject(facts), "http.host is not set", observed="http.host absent",
                     expected="https://<registry host>")
        return
    try:
        parts = urlsplit(str(host))
        valid = parts.scheme == "https" and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced [ in the host part
        valid = False
    if valid:
        yield passed(subject(facts), f"http.host is {host}", observed=host)
    else:
        yield failed(subject(facts), f"http.host {host!r} is not an https URL", observed=host,
                     expected="https://<registry host>")
