"""The fleet lab: target hosts that Ansible reaches over real SSH, in network namespaces (prefix rgs-).

Each host is Debian's OpenSSH server (`sshd -D`) started inside a network namespace (an existing
lab's registry namespace, or one of ours, `rgs-...`), listening on loopback there with a host key
generated for this run; the client key is generated per run too. Nothing listens in the root
network namespace: Ansible's ssh reaches a host through `ProxyCommand ip netns exec <ns> nc %h %p`,
so the SSH session itself (key exchange, auth, the modules Ansible copies) is real end to end.
Each host gets its own loopback port, so ssh's connection sharing never mixes hosts.

`light_host` builds a lightweight registry host: a registry config, an nginx config and a small
filesystem storage tree (one repository, one tag, a manifest, a config and a layer blob), with no
service running (an offline review of that host's files).

Processes are recorded and stopped by PID after checking their command line (lab.procs); `close`
also deletes the namespaces this object created, their /etc/netns entries and its directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import procs
from .netns import NETNS_ETC, LabError, sh

PREFIX = "rgs-"
SSHD = "/usr/sbin/sshd"


@dataclass
class SshHost:
    name: str
    ns: str
    port: int
    pid: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)


class FleetLab:
    """SSH-reachable hosts for one test module or benchmark run."""

    def __init__(self, base: Path) -> None:
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        self.base = base
        self.hosts: dict[str, SshHost] = {}
        self.created_ns: list[str] = []
        self.processes: list[dict[str, Any]] = []
        self.client_key = base / "client_ed25519"
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "regaudit-fleet-lab", "-f", str(self.client_key)])
        self.ansible_home = base / "ansible-home"
        self.ansible_home.mkdir()
        self.known_hosts = base / "known_hosts"
        self.known_hosts.write_text("")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory

    def namespace(self, name: str) -> str:
        """Create our own namespace `rgs-<name>` (loopback up, hosts file, no DNS)."""
        ns = f"{PREFIX}{name}"
        if ns in sh(["ip", "netns", "list"]).stdout.split():
            raise LabError(f"namespace {ns} exists already (another run, or a leftover: ip netns delete {ns})")
        sh(["ip", "netns", "add", ns])
        self.created_ns.append(ns)
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost {ns}\n::1 localhost\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        return ns

    def ssh_host(self, name: str, ns: str, port: int, variables: dict[str, Any] | None = None) -> SshHost:
        """Start sshd for inventory host `name` in namespace `ns` on 127.0.0.1:`port`."""
        home = self.base / name
        home.mkdir()
        host_key = home / "ssh_host_ed25519_key"
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        authorized = home / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        authorized.chmod(0o600)
        config = home / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{port}", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "UsePAM no", "StrictModes no", "PidFile none", "Subsystem sftp internal-sftp", "LogLevel ERROR",
            "MaxStartups 100:30:200", "MaxSessions 50", "",
        ]))
        pid = procs.spawn(ns, [SSHD, "-D", "-e", "-f", str(config)], home / "sshd.log")
        self.processes.append({"name": f"sshd {name}", "pid": pid, "ns": ns, "match": str(config)})
        _wait_listening(ns, port, home / "sshd.log")
        public = Path(f"{host_key}.pub").read_text().split()
        with self.known_hosts.open("a") as handle:
            handle.write(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
        host = SshHost(name, ns, port, pid, dict(variables or {}))
        self.hosts[name] = host
        return host

    def dead_host(self, name: str, ns: str, port: int, variables: dict[str, Any] | None = None) -> SshHost:
        """An inventory host whose namespace has nothing listening: unreachable over SSH."""
        host = SshHost(name, ns, port, None, dict(variables or {}))
        self.hosts[name] = host
        return host

    def connection_vars(self, host: SshHost) -> dict[str, Any]:
        proxy = f"ip netns exec {host.ns} nc %h %p"
        return {
            "ansible_host": "127.0.0.1", "ansible_port": host.port, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": (f"-o ProxyCommand=\"{proxy}\" -o UserKnownHostsFile={self.known_hosts} "
                                        "-o StrictHostKeyChecking=yes -o ConnectTimeout=10"),
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def write_inventory(self, path: Path, groups: dict[str, list[str]], group_vars: dict[str, dict[str, Any]],
                        all_vars: dict[str, Any]) -> Path:
        """An Ansible YAML inventory: every host with its connection and own variables."""
        children: dict[str, Any] = {}
        for group, names in groups.items():
            children[group] = {"hosts": {n: {**self.connection_vars(self.hosts[n]), **self.hosts[n].variables}
                                         for n in names}}
            if group_vars.get(group):
                children[group]["vars"] = group_vars[group]
        path.write_text(yaml.safe_dump({"all": {"vars": all_vars, "children": children}}, sort_keys=False))
        return path

    def run_playbook(self, playbook: Path, inventory: Path, extra: list[str] | None = None,
                     forks: int | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        argv = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", str(inventory), str(playbook)]
        if forks:
            argv += ["--forks", str(forks)]
        return subprocess.run([*argv, *(extra or [])], capture_output=True, text=True, timeout=timeout,
                              env=playbook_env(self.ansible_home), check=False)

    def end_connections(self) -> list[str]:
        """Close the ssh connection masters Ansible keeps open (ControlPersist), so the session
        processes they hold on the hosts end now rather than a minute later."""
        done = []
        control = self.ansible_home / "cp"
        for sock in sorted(control.iterdir()) if control.is_dir() else []:
            sh(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "fleet-lab"], check=False, timeout=10)
            done.append(f"ssh master {sock.name} closed")
        return done

    def close(self) -> list[str]:
        """Close Ansible's ssh masters, stop our sshd processes by PID, delete our namespaces."""
        done = self.end_connections()
        done += [procs.stop(rec, grace=5) for rec in self.processes]
        self.processes.clear()
        for ns in self.created_ns:
            sh(["ip", "netns", "delete", ns], check=False)
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
            done.append(f"namespace {ns} deleted")
        self.created_ns.clear()
        shutil.rmtree(self.base, ignore_errors=True)
        return done


def _wait_listening(ns: str, port: int, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sh(["ip", "netns", "exec", ns, "nc", "-z", "-w", "1", "127.0.0.1", str(port)], check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise LabError(f"sshd in {ns} did not listen on 127.0.0.1:{port} within {timeout:g}s; see {log}")


def _blob(storage: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = storage / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def light_host(directory: Path, name: str) -> dict[str, str]:
    """A registry host's files without services: config.yml, nginx.conf, a one-tag storage tree.

    Returns the inside paths (the `regaudit_paths` inventory variable)."""
    storage = directory / "storage"
    registry = directory / "registry"
    nginx = directory / "nginx"
    for d in (storage, registry, nginx):
        d.mkdir(parents=True, exist_ok=True)
    config = {"version": 0.1, "log": {"formatter": "json"},
              "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True},
                          "maintenance": {"uploadpurging": {"enabled": True, "age": "168h", "interval": "24h",
                                                            "dryrun": False}}},
              "http": {"addr": "127.0.0.1:5000", "host": f"https://{name}.regaudit.test",
                       "headers": {"X-Content-Type-Options": ["nosniff"]}},
              "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}}}
    (registry / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (nginx / "nginx.conf").write_text(
        "events {}\nhttp {\n  server {\n    listen 127.0.0.1:8080;\n    client_max_body_size 0;\n"
        "    location /v2/ {\n      proxy_pass http://127.0.0.1:5000;\n      proxy_read_timeout 900;\n"
        "      proxy_send_timeout 900;\n    }\n  }\n}\n")
    layer = _blob(storage, os.urandom(2048))
    image_config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                               "diff_ids": [layer]}}).encode()
    config_digest = _blob(storage, image_config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(image_config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 2048}],
    }).encode()
    manifest_digest = _blob(storage, manifest)
    repo = storage / "docker/registry/v2/repositories/app"
    algo, hexdigest = manifest_digest.split(":")
    for link in (repo / "_manifests/tags/v1/current/link", repo / f"_manifests/tags/v1/index/{algo}/{hexdigest}/link",
                 repo / f"_manifests/revisions/{algo}/{hexdigest}/link"):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(manifest_digest)
    for digest in (layer, config_digest):
        algo, hexdigest = digest.split(":")
        link = repo / f"_layers/{algo}/{hexdigest}/link"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(digest)
    return {"registry_config": str(registry / "config.yml"), "nginx_config": str(nginx / "nginx.conf"),
            "storage_root": str(storage)}


def playbook_env(ansible_home: Path) -> dict[str, str]:
    """Environment for ansible-playbook: its own home, temp and control dirs; no cowsay, no retry files."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "REGAUDIT_"))},
        "ANSIBLE_HOME": str(ansible_home),
        "ANSIBLE_LOCAL_TEMP": str(ansible_home / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(ansible_home / "cp"),
        "ANSIBLE_NOCOWS": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }


def find_python39() -> str | None:
    """A Python 3.9 interpreter on this machine (PATH, or pyenv's), or None; the zipapp's floor."""
    candidates = [shutil.which("python3.9"), *sorted(str(p) for p in Path("/root/.pyenv/versions").glob(
        "3.9.*/bin/python3.9")), *sorted(str(p) for p in Path("/usr/local/bin").glob("python3.9"))]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None
