"""Shared reading of `config.nginx` for the nginx proxy.* checks: the registry's server blocks.

nginx checks judge every server block whose /v2/ location proxies to the registry (one outcome
each); no such server block is a `skip` naming what the probe found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.checkapi import Evidence, Outcome, errored, skipped
from auditor.judge.shapes import ConfigNginx, ConfigNginxRegistryServer

NGINX = "config.nginx"
GUIDE_NGINX = "Nginx Alternative with Buffer Tuning"


def _nginx_servers(ev: Evidence) -> tuple[ConfigNginx, list[ConfigNginxRegistryServer]]:
    facts = ev.typed(NGINX, ConfigNginx)
    return facts, [s for s in facts.get("registry_servers") or [] if isinstance(s, dict)]


def _no_registry_server(facts: ConfigNginx) -> Outcome:
    reg = facts.get("registry_address") or {}
    host = reg.get("host") or "*"
    seen = [f"{o.get('where')} -> {(o.get('v2_proxy_pass') or {}).get('url')}" for o in facts.get("other_servers") or []
            if (o.get("v2_proxy_pass") or {}).get("url")]
    reason = f"no server of this nginx proxies /v2/ to the registry at {host}:{reg.get('port')}"
    if not facts.get("http_block", True):
        reason += " (no http block)"
    reason += "; /v2/ is proxied elsewhere: " + ", ".join(seen) if seen else "; no server proxies /v2/ at all"
    unresolved = [o for o in facts.get("other_servers") or []
                  if str((o.get("v2_proxy_pass") or {}).get("resolved_by", "")).startswith("contains variables")]
    if unresolved:
        return errored(str(facts.get("path")), "cannot tell whether nginx proxies the registry: " + reason
                       + " (proxy_pass with variables is resolved only at request time)")
    return skipped(str(facts.get("path")), reason)


def _server_subject(facts: ConfigNginx, server: ConfigNginxRegistryServer) -> str:
    names = " ".join(server.get("server_names") or []) or "-"
    location = (server.get("location") or {}).get("match") or "?"
    return f"nginx server {names} at {server.get('where')}, location {location}"


def _directive(server: ConfigNginxRegistryServer, name: str) -> dict[str, Any]:
    directives: Mapping[str, Any] = server.get("directives") or {}
    return dict(directives.get(name) or {"args": None, "level": "default"})


def _shown(entry: Mapping[str, Any]) -> str:
    args = entry.get("args")
    text = " ".join(args) if args else "(unset)"
    level = entry.get("level")
    where = entry.get("where")
    return f"{text} ({level}{', ' + where if where else ''})"
