"""Self-test properties of the container variants (container-hardened, container-weak), verified
without regaudit: Debian's docker client (`docker inspect`), `ss`, `nc` from every namespace,
/proc/<pid>/mountinfo of the containers' processes, iptables-save, file modes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from typing import Any

from . import containers, probes
from .selftest import LARGEST_LAYER, Verdict, verifier
from .state import LabInfo
from .variants import ALLOWED_V4


def _inspect(info: LabInfo, name: str) -> dict[str, Any]:
    out = subprocess.run([containers.DOCKER, "-H", info["docker"]["host"], "inspect", name], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    data: dict[str, Any] = json.loads(out)[0]
    return data


@verifier("engine-in-registry-namespace")
def _engine(info: LabInfo, subject: str | None = None) -> Verdict:
    pid = int(info["docker"]["pid"])
    mine = os.readlink(f"/proc/{pid}/ns/net")
    ns = os.stat(f"/run/netns/{info.ns('registry')}").st_ino
    ok = mine == f"net:[{ns}]"
    return ok, f"dockerd pid {pid} in {mine} (registry namespace inode {ns})"


@verifier("containers-running")
def _running(info: LabInfo, subject: str | None = None) -> Verdict:
    states = {n: _inspect(info, n)["State"]["Running"] for n in ("registry", "nginx")}
    return all(states.values()), f"running: {states}"


def _published(info: LabInfo, name: str) -> list[str]:
    ports = _inspect(info, name)["NetworkSettings"]["Ports"] or {}
    return sorted(f"{b['HostIp'] or '*'}:{b['HostPort']}" for binds in ports.values() for b in binds or [])


@verifier("containers-published-loopback")
def _published_lo(info: LabInfo, subject: str | None = None) -> Verdict:
    got = {n: _published(info, n) for n in ("registry", "nginx")}
    ok = got == {"registry": ["127.0.0.1:5000"], "nginx": ["127.0.0.1:8080"]}
    return ok, f"published: {got}"


@verifier("container-registry-published-all")
def _published_all(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _published(info, "registry")
    reg = info.addresses["registry"]
    # the guide's INPUT rules drop the outsider, yet Docker's DNAT sends IPv4 through FORWARD
    rules = probes.firewall(info, "iptables")
    guarded = "-A INPUT -p tcp -m tcp --dport 5000 -j DROP" in rules
    v4 = probes.tcp_connect(info, "outsider", reg["v4"], 5000)
    v6 = probes.tcp_connect(info, "outsider", reg["v6"], 5000)
    ok = any(p.startswith(("0.0.0.0:", "*:")) for p in got) and guarded and v4 and not v6
    return ok, (f"published {got}; INPUT drops :5000: {guarded}; outsider connects over IPv4 (DNAT, FORWARD): "
                f"{v4}, over IPv6 (docker-proxy, INPUT): {v6}")


@verifier("registry-port-closed-outside-containers")
def _closed(info: LabInfo, subject: str | None = None) -> Verdict:
    reg = info.addresses["registry"]
    open_ = [f"{role}->{fam}" for role in ("proxy", "ci", "runtime", "outsider") for fam in ("v4", "v6")
             if probes.tcp_connect(info, role, reg[fam], 5000, wait=1)]
    return not open_, f"registry port reachable: {open_}" if open_ else "no namespace reaches :5000"


def _mount_of(info: LabInfo, name: str, path: str) -> probes.Mount | None:
    return probes.mount_for(int(_inspect(info, name)["State"]["Pid"]), path)


@verifier("container-tmpfs-hardened")
def _tmpfs(info: LabInfo, subject: str | None = None) -> Verdict:
    m = _mount_of(info, "nginx", containers.NGINX_TEMP + "/proxy")
    if m is None or m.fstype != "tmpfs":
        return False, f"{containers.NGINX_TEMP}/proxy is not on a tmpfs in the nginx container: {m}"
    size = probes.size_bytes(m.super_options.get("size", "0"))
    ok = {"noexec", "nosuid"} <= m.options and size >= 2 * LARGEST_LAYER and m.mountpoint == containers.NGINX_TEMP
    return ok, f"{m.mountpoint}: tmpfs {sorted(m.options)} size={m.super_options.get('size')}"


@verifier("container-temp-in-writable-layer")
def _temp_layer(info: LabInfo, subject: str | None = None) -> Verdict:
    m = _mount_of(info, "nginx", containers.NGINX_TEMP + "/proxy")
    ok = m is not None and m.fstype != "tmpfs" and m.mountpoint == "/"
    return ok, f"nginx's {containers.NGINX_TEMP}/proxy is on {m.fstype if m else '?'} at {m.mountpoint if m else '?'}"


def _config_mount(info: LabInfo) -> dict[str, Any]:
    data = _inspect(info, "registry")
    return next(m for m in data["Mounts"] if m["Destination"] == containers.CONFIG_IN_CONTAINER)


@verifier("container-runtime-hardened")
def _runtime_ok(info: LabInfo, subject: str | None = None) -> Verdict:
    bad = []
    for name in ("registry", "nginx"):
        hc = _inspect(info, name)["HostConfig"]
        if hc["Privileged"] or hc.get("CapAdd") or not hc["ReadonlyRootfs"] or \
                hc["RestartPolicy"]["Name"] not in ("always", "unless-stopped"):
            bad.append(name)
    rw = _config_mount(info)["RW"]
    return not bad and not rw, f"containers with runtime defects: {bad}; config mount RW={rw}"


@verifier("container-registry-runtime-weak")
def _runtime_weak(info: LabInfo, subject: str | None = None) -> Verdict:
    hc = _inspect(info, "registry")["HostConfig"]
    caps = sorted(hc.get("CapAdd") or [])
    ok = bool(caps) and not hc["ReadonlyRootfs"] and hc["RestartPolicy"]["Name"] in ("", "no")
    return ok, f"registry: cap-add {caps}, read-only root {hc['ReadonlyRootfs']}, restart {hc['RestartPolicy']['Name']!r}"


@verifier("container-nginx-writable-root")
def _nginx_rw(info: LabInfo, subject: str | None = None) -> Verdict:
    hc = _inspect(info, "nginx")["HostConfig"]
    return not hc["ReadonlyRootfs"] and not hc.get("Tmpfs"), f"nginx: read-only root {hc['ReadonlyRootfs']}, tmpfs {hc.get('Tmpfs')}"


@verifier("container-config-rw-world-writable")
def _config_rw(info: LabInfo, subject: str | None = None) -> Verdict:
    mount = _config_mount(info)
    mode = stat.S_IMODE(os.stat(mount["Source"]).st_mode)
    return mount["RW"] and mode & 0o002 != 0, f"{mount['Source']} mounted RW={mount['RW']}, mode {mode:04o}"


@verifier("docker-user-rules")
def _docker_user(info: LabInfo, subject: str | None = None) -> Verdict:
    rules = [r for r in probes.firewall(info, "iptables") if r.startswith("-A DOCKER-USER ")]
    want = [f"-A DOCKER-USER -s {s} -p tcp -m tcp --dport 5000 -j RETURN" for s in ALLOWED_V4]
    want += ["-A DOCKER-USER -i eth0 -p tcp -m tcp --dport 5000 -j DROP", "-A DOCKER-USER -j RETURN"]
    return rules == want, f"DOCKER-USER: {rules}"


@verifier("content-through-container")
def _content(info: LabInfo, subject: str | None = None) -> Verdict:
    repos = os.path.join(info["registry"]["storage_root"], "docker/registry/v2/repositories")
    found = sorted(os.listdir(repos)) if os.path.isdir(repos) else []
    return bool(found), f"repositories in the registry container's volume ({repos}): {found}"


CONTAINER_COMMON = ["topology", "hosts-resolve", "reach-443", "apache-listen", "http-redirects",
                    "tls-rsa-and-ecdsa", "tls13-offered", "engine-in-registry-namespace", "containers-running",
                    "tls-chain-valid", "tls-legacy-refused", "tls-only-guide-ciphers", "tls-keys-0600",
                    "auth-basic-required", "htpasswd-bcrypt-private", "content-through-container"]
PROPERTIES: dict[str, list[str]] = {
    "container-hardened": [*CONTAINER_COMMON, "containers-published-loopback", "container-tmpfs-hardened",
                           "container-runtime-hardened", "docker-user-rules",
                           "registry-port-closed-outside-containers"],
    # container-weak: the properties that still hold, plus one verifier per seeded defect
    "container-weak": [*CONTAINER_COMMON],
}
