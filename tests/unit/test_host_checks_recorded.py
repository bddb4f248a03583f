"""The inside checks judged on evidence recorded from the lab (tests/fixtures/host/lab-*-evidence.json):
hardened passes every one; weak fails exactly its seeded defects, each with evidence."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from auditor.checkapi import ProbeRecord
from auditor.model import Status

from .helpers import FIXTURES, judge

OWNED = [
    "registry.bind-loopback", "registry.stale-uploads", "registry.health-check", "registry.debug-loopback",
    "tmpfs.mounted", "tmpfs.size", "tmpfs.persistent", "files.tls-key", "files.htpasswd", "files.configs",
    "storage.usage", "storage.reclaimable",
]
WEAK_FAILS = {"registry.bind-loopback", "registry.stale-uploads", "tmpfs.mounted", "tmpfs.size",
              "files.tls-key", "files.htpasswd"}


def recorded(variant: str) -> tuple[dict[str, ProbeRecord], dt.datetime]:
    data = json.loads((FIXTURES / "host" / f"lab-{variant}-evidence.json").read_text())
    records = {name: ProbeRecord.from_json(name, rec) for name, rec in data["probes"].items()}
    return records, dt.datetime.fromisoformat(data["judged_at"])


def results(variant: str, check_id: str) -> list[Any]:
    records, now = recorded(variant)
    return judge(check_id, records, now=now)


@pytest.mark.parametrize("check_id", OWNED)
def test_hardened_passes(check_id: str) -> None:
    found = results("hardened", check_id)
    assert found and all(r.status is Status.PASS for r in found), found


@pytest.mark.parametrize("check_id", OWNED)
def test_weak_fails_exactly_its_defects(check_id: str) -> None:
    found = results("weak", check_id)
    statuses = {r.status for r in found}
    if check_id in WEAK_FAILS:
        assert Status.FAIL in statuses, found
        for r in found:
            if r.status is Status.FAIL:
                assert r.observed is not None and r.expected is not None, r
    else:
        assert statuses == {Status.PASS}, found


def test_bind_loopback_evidence_names_process_and_socket() -> None:
    (result,) = results("weak", "registry.bind-loopback")
    assert "[::]:5000" in result.message and "docker-registry serve" in result.message
    observed = result.observed
    assert observed["process"]["pid"] and "docker-registry" in observed["process"]["cmdline"]
    assert [s["endpoint"] for s in observed["non_loopback"]] == ["[::]:5000"]
    assert observed["non_loopback"][0]["inode"] > 0


def test_stale_upload_evidence_lists_upload_and_age() -> None:
    (result,) = results("weak", "registry.stale-uploads")
    assert result.subject == "myapp/backend"
    (item,) = result.observed
    assert item["upload"] in result.message
    assert item["age_seconds"] > 29 * 86400
    assert "purging is off" in result.expected


def test_tmpfs_evidence_names_options_and_sizes() -> None:
    mounted = results("weak", "tmpfs.mounted")
    assert {r.subject.split()[0] for r in mounted} == {"proxy_temp_path", "client_body_temp_path"}
    assert all("noexec" in r.message and "nosuid" in r.observed["options"] for r in mounted)
    (size,) = results("weak", "tmpfs.size")
    assert size.observed["size_bytes"] == 64 * 1024 * 1024
    assert size.expected["min_bytes"] == 2 * size.observed["largest_layer"]["bytes"]


def test_files_evidence_names_modes_and_schemes() -> None:
    keys = results("weak", "files.tls-key")
    assert len(keys) == 2 and all(r.observed["mode"] == "0644" for r in keys)
    (ht,) = results("weak", "files.htpasswd")
    assert ht.observed["non_bcrypt"][0]["user"] == "legacy"
    assert ht.observed["non_bcrypt"][0]["scheme"] == "sha1"
    assert "$" not in json.dumps(ht.observed)  # no hash in evidence


def test_health_check_reads_the_live_endpoint() -> None:
    (result,) = results("hardened", "registry.health-check")
    assert "answers 200" in result.message


def test_an_unhealthy_endpoint_fails_health_check() -> None:
    records, now = recorded("hardened")
    live = dict(records["registry.debug-health"].value)
    live.update(status=503, healthy=False, body='{"storagedriver_filesystem":"failed"}')
    records["registry.debug-health"] = ProbeRecord("registry.debug-health", "ok", live)
    (result,) = judge("registry.health-check", records, now=now)
    assert result.status is Status.FAIL and "503" in result.message


def test_a_debug_listener_on_every_interface_fails_even_with_a_loopback_config() -> None:
    records, now = recorded("hardened")
    sockets = json.loads(json.dumps(records["host.sockets"].value))
    for sock in sockets["sockets"]:
        if sock["port"] == 5001:
            sock.update(address="::", endpoint="[::]:5001", loopback=False, table="tcp6")
    records["host.sockets"] = ProbeRecord("host.sockets", "ok", sockets)
    (result,) = judge("registry.debug-loopback", records, now=now)
    assert result.status is Status.FAIL and "[::]:5001" in result.message


def test_a_loopback_config_with_a_wildcard_socket_fails_bind_loopback() -> None:
    records, now = recorded("hardened")
    sockets = json.loads(json.dumps(records["host.sockets"].value))
    for sock in sockets["sockets"]:
        if sock["port"] == 5000:
            sock.update(address="0.0.0.0", endpoint="0.0.0.0:5000", loopback=False)
    records["host.sockets"] = ProbeRecord("host.sockets", "ok", sockets)
    (result,) = judge("registry.bind-loopback", records, now=now)
    assert result.status is Status.FAIL
    assert result.message.startswith("pid ") and "0.0.0.0:5000" in result.message  # the config part is fine


def test_no_registry_process_is_a_warning_never_a_pass() -> None:
    """An offline config review: the loopback config passes its letter, the sockets were not seen."""
    records, now = recorded("hardened")
    found = dict(records["host.discovery"].value)
    found.update(registry=None, registries=[], containers=[])
    records["host.discovery"] = ProbeRecord("host.discovery", "ok", found)
    (result,) = judge("registry.bind-loopback", records, now=now)
    assert result.status is Status.WARN and "no running registry" in result.message
    assert "sockets were not checked" in result.message


def test_no_registry_process_and_a_routable_addr_fails() -> None:
    records, now = recorded("weak")
    found = dict(records["host.discovery"].value)
    found.update(registry=None, registries=[], containers=[])
    records["host.discovery"] = ProbeRecord("host.discovery", "ok", found)
    (result,) = judge("registry.bind-loopback", records, now=now)
    assert result.status is Status.FAIL and "binds every interface" in result.message


def test_stale_uploads_judge_at_the_audit_time() -> None:
    records, now = recorded("weak")
    early = now - dt.timedelta(days=25)
    (result,) = judge("registry.stale-uploads", records, now=early)
    assert result.status is Status.PASS


def test_debug_address_from_the_environment_is_the_one_checked() -> None:
    records, now = recorded("hardened")
    found = json.loads(json.dumps(records["host.discovery"].value))
    found["registry"]["env_overrides"] = {"REGISTRY_HTTP_DEBUG_ADDR": "0.0.0.0:6060"}
    found["registries"][0]["env_overrides"] = found["registry"]["env_overrides"]
    pid = found["registry"]["pid"]
    sockets = json.loads(json.dumps(records["host.sockets"].value))
    sockets["sockets"].append({"table": "tcp6", "address": "::", "port": 6060, "endpoint": "[::]:6060",
                               "loopback": False, "inode": 4242, "uid": 0,
                               "processes": [{"pid": pid, "comm": "docker-registry", "exe": None}]})
    records["host.discovery"] = ProbeRecord("host.discovery", "ok", found)
    records["host.sockets"] = ProbeRecord("host.sockets", "ok", sockets)
    (result,) = judge("registry.debug-loopback", records, now=now)
    assert result.status is Status.FAIL and "[::]:6060" in result.message
