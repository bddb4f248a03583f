"""Remediation for containers, on recorded facts of the lab's container-weak deployment: the changed
`docker run` lines, the create body the Engine gets (volumes kept), and DOCKER-USER rules that the
firewall evaluator then judges as closing the DNAT bypass."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

from auditor.checks.firewall import registry_port

from auditor.checkapi import Evidence, ProbeRecord
from auditor.host import docker
from auditor.remediation import containers
from auditor.remediation.firewall import docker_user_rules

from .helpers import FIXTURES

GUIDE_V4 = ["10.0.1.10/32", "10.0.5.0/24", "10.0.10.0/24"]
GUIDE_V6 = ["fd00:0:1::10/128", "fd00:0:5::/64", "fd00:0:10::/64"]
NOW = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def inspect(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "docker" / f"lab-{name}.json").read_text()))


def test_run_lines_before_and_after() -> None:
    facts = docker.runtime_facts(inspect("weak-registry"))
    before = containers.run_line(facts)
    assert before[before.index("-p"):before.index("-p") + 2] == ["-p", "0.0.0.0:5000:5000"]
    assert "--cap-add" in before and "--read-only" not in before
    edits = {"cap_add": [], "config_ro": "/etc/docker/registry/config.yml", "read_only": True,
             "restart": "unless-stopped", "publish_loopback": True}
    after = containers.run_line(facts, edits)
    assert after.count("-p") == 1 and "127.0.0.1:5000:5000" in after
    assert "--cap-add" not in after and "--read-only" in after and "unless-stopped" in after
    assert "registry-data:/var/lib/registry" in after
    assert any(a.endswith(":/etc/docker/registry/config.yml:ro") for a in after)
    assert after[-2:] == ["regaudit-lab/registry:2.8", "/etc/docker/registry/config.yml"]


def test_create_body_keeps_volumes_environment_and_network_address() -> None:
    old = inspect("weak-registry")
    body = containers.create_body(copy.deepcopy(old), {
        "cap_add": [], "read_only": True, "restart": "unless-stopped", "publish_loopback": True,
        "config_ro": "/etc/docker/registry/config.yml", "tmpfs": {"/tmp": "rw,noexec,nosuid,size=16m"}})
    host = body["HostConfig"]
    assert host["CapAdd"] == [] and host["ReadonlyRootfs"] and host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["PortBindings"] == {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5000"}]}
    assert any(b.endswith(":/etc/docker/registry/config.yml:ro") for b in host["Binds"])
    assert "registry-data:/var/lib/registry" in host["Binds"]
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=16m"}
    assert body["Env"] == old["Config"]["Env"] and body["Image"] == old["Config"]["Image"]
    assert body["NetworkingConfig"]["EndpointsConfig"]["regaudit"]["IPAMConfig"]["IPv4Address"] == "172.30.0.10"


def _judge(facts: dict[str, Any]) -> dict[str, Any]:
    ev = Evidence({"host.firewall": ProbeRecord("host.firewall", "ok", facts)}, NOW)
    return {o.subject: o for o in registry_port.judge(ev, {"allowed_sources_v4": GUIDE_V4,
                                                           "allowed_sources_v6": GUIDE_V6})}


def _insert(save: str, rules: str) -> str:
    """iptables-save text with `-I DOCKER-USER n ...` lines applied (what iptables-restore --noflush does)."""
    lines = save.splitlines()
    chain = [i for i, ln in enumerate(lines) if ln.startswith("-A DOCKER-USER ")]
    for rule in rules.splitlines():
        m = re.match(r"-I DOCKER-USER (\d+) (.*)", rule)
        if m:
            lines.insert(chain[0] + int(m.group(1)) - 1, f"-A DOCKER-USER {m.group(2)}")
    return "\n".join(lines) + "\n"


def test_docker_user_rules_close_the_dnat_bypass_the_evaluator_finds() -> None:
    facts = json.loads((FIXTURES / "firewall" / "docker-lab-weak.host-firewall.json").read_text())
    before = _judge(facts)
    assert before["IPv4"].status.value == "fail"
    assert "let in by iptables filter DOCKER rule 1" in before["IPv4"].message
    assert before["IPv6"].status.value == "pass"  # docker-proxy on [::]:5000: the INPUT rules apply
    rules = docker_user_rules(GUIDE_V4, [5000])
    fixed = copy.deepcopy(facts)
    text = fixed["rulesets"]["iptables"]["text"]
    fixed["rulesets"]["iptables"]["text"] = _insert(text, rules)
    after = _judge(fixed)
    assert after["IPv4"].status.value == "pass", after["IPv4"].message
    assert "DOCKER-USER" in json.dumps(after["IPv4"].observed)


def test_the_hosts_own_connections_meet_nat_output_not_forward() -> None:
    """Recorded ruleset of container-weak plus a DOCKER-USER that drops everything: a packet from the
    host itself to its own address is DNATed in nat OUTPUT and leaves through the output hook (DOCKER-USER
    never sees it), an outsider's goes through FORWARD and is dropped; to 127.0.0.1 nothing is DNATed
    (Docker's OUTPUT rule skips 127.0.0.0/8): docker-proxy answers through INPUT."""
    import ipaddress

    from auditor.checks.firewall import scene_of

    from auditor.judge.firewall.assemble import assemble
    from auditor.judge.firewall.reach import reach

    facts = json.loads((FIXTURES / "firewall" / "docker-lab-weak.host-firewall.json").read_text())
    text = facts["rulesets"]["iptables"]["text"]
    facts["rulesets"]["iptables"]["text"] = text.replace("-A DOCKER-USER -j RETURN",
                                                         "-A DOCKER-USER -j DROP\n-A DOCKER-USER -j RETURN")
    asm = assemble(facts["rulesets"])
    scene = scene_of(facts, 5000)
    host = ipaddress.ip_address("10.0.0.10")
    own = reach(asm, scene, 4, host, host, "lo")
    assert (own.path, own.verdict.result) == ("output", "accept")
    assert own.nat is not None and own.nat.chain == "DOCKER" and "172.30.0.10:5000" in own.dst
    outsider = reach(asm, scene, 4, ipaddress.ip_address("10.0.99.50"), host, "eth0")
    assert (outsider.path, outsider.verdict.result) == ("forward", "drop")
    assert outsider.verdict.decisive is not None and outsider.verdict.decisive.chain == "DOCKER-USER"
    loop = ipaddress.ip_address("127.0.0.1")
    lo = reach(asm, scene, 4, loop, loop, "lo")
    assert (lo.path, lo.verdict.result) == ("input", "accept")


def test_compose_service_edits_mirror_the_recreation() -> None:
    service = {"image": "registry:2", "privileged": True, "cap_add": ["SYS_ADMIN"],
               "ports": ["5000:5000", "0.0.0.0:5000:5000/tcp", {"target": 5000, "published": 5001}],
               "volumes": ["./config.yml:/etc/docker/registry/config.yml:rw", "data:/var/lib/registry",
                           {"type": "bind", "source": "./c.yml", "target": "/etc/alt.yml"}],
               "tmpfs": ["/run"]}
    out = containers.edit_service(service, {"privileged": False, "cap_add": [], "read_only": True,
                                            "restart": "always", "publish_loopback": True,
                                            "config_ro": "/etc/docker/registry/config.yml",
                                            "tmpfs": {"/run": "rw", "/cache": "rw,noexec,nosuid,size=1g"}})
    assert "privileged" not in out and "cap_add" not in out and out["read_only"] and out["restart"] == "always"
    assert out["ports"] == ["127.0.0.1:5000:5000", "127.0.0.1:5000:5000/tcp",
                            {"target": 5000, "published": 5001, "host_ip": "127.0.0.1"}]
    assert out["volumes"][0] == "./config.yml:/etc/docker/registry/config.yml:ro"
    assert out["volumes"][1:] == service["volumes"][1:]
    assert out["tmpfs"] == ["/run", "/cache:rw,noexec,nosuid,size=1g"]
    assert service["cap_add"] == ["SYS_ADMIN"], "the input is not modified"


def test_compose_file_from_labels() -> None:
    facts = {"compose": {"com.docker.compose.project.config_files": "docker-compose.yml,override.yml",
                         "com.docker.compose.service": "reg", "com.docker.compose.project.working_dir": "/srv/app"}}
    assert containers.compose_file(facts) == ("/srv/app/docker-compose.yml", "reg")
    assert containers.compose_file({"compose": {}}) is None
