"""Generator `container-run`: the registry and nginx containers re-created the way the guide's intent
asks (published on 127.0.0.1, config mounted read-only, read-only root with --tmpfs for what nginx
writes, no --privileged / --cap-add, a restart policy), keeping every volume and bind mount.

Plan: the changed `docker run` line of each container (before and after), written to the plan
directory. Apply (only with `--recreate-containers`): through the Engine API, the old container is
stopped and renamed aside (kept for rollback), a new one is created with the same name from the old
one's own create body with the edits, started and watched; rollback removes the new one and puts
the old one back under its name, started. Volumes are never removed.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from auditor import bounded
from auditor.host import docker
from auditor.judge.units import required_bytes, size_option

from .model import Artifact, FileChange, Plan
from .procs import StepError
from .render import header
from .site import Site, read_live

NAME = "container-run"
RESTART = "unless-stopped"
RESTART_OK = ("always", "unless-stopped", "on-failure")
PUBLISH_CHECKS = ("registry.bind-loopback", "net.registry-port-exposed", "auth.challenge-over-tls")
TMPFS_CHECKS = ("tmpfs.mounted", "tmpfs.size", "tmpfs.persistent")
NGINX_RUNTIME_DIRS = ("/run", "/var/cache/nginx", "/var/log/nginx")
START_WATCH_SECONDS = 3.0


@dataclass(frozen=True)
class ContainerChange:
    """Re-create container `name` (engine id `id`) with `edits` applied to its HostConfig.

    `edits`: privileged False, cap_add [], read_only True, restart policy, `publish_loopback` (host
    IPs of published ports -> 127.0.0.1), `config_ro` (the config bind mount's destination), and
    `tmpfs` {destination: options} to add. `before`/`after` are the `docker run` lines shown.
    """

    name: str
    id: str
    role: str
    edits: dict[str, Any]
    before: tuple[str, ...]
    after: tuple[str, ...]
    endpoint: str
    generator: str
    checks: tuple[str, ...]
    why: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return f"re-create container {self.name} ({', '.join(self.why)}; volumes kept)"


def run_line(facts: dict[str, Any], edits: dict[str, Any] | None = None) -> list[str]:
    """A `docker run` line showing the container's runtime settings (after `edits` when given).
    Environment, labels, networks' addresses and other settings are copied unchanged by apply."""
    e = edits or {}
    argv = ["docker", "run", "-d", "--name", str(facts.get("name"))]
    mode = str(facts.get("network_mode") or "")
    if mode and mode != "default":
        argv += ["--network", mode]
    for port in facts.get("published_ports") or []:
        host_ip = "127.0.0.1" if e.get("publish_loopback") else str(port.get("host_ip") or "")
        if ":" in host_ip:
            host_ip = f"[{host_ip}]"
        spec = f"{port['host_port']}:{port['container_port']}"
        flag = f"{host_ip}:{spec}" if host_ip else spec
        if flag not in argv:
            argv += ["-p", flag]
    if facts.get("privileged") and e.get("privileged") is not False:
        argv.append("--privileged")
    for cap in facts.get("cap_add") or [] if "cap_add" not in e else e["cap_add"]:
        argv += ["--cap-add", str(cap)]
    for cap in facts.get("cap_drop") or []:
        argv += ["--cap-drop", str(cap)]
    if facts.get("read_only_rootfs") or e.get("read_only"):
        argv.append("--read-only")
    restart = e.get("restart") or facts.get("restart_policy")
    if restart and restart != "no":
        argv += ["--restart", str(restart)]
    for opt in facts.get("security_opt") or []:
        argv += ["--security-opt", str(opt)]
    tmpfs = {str(t["destination"]): str(t.get("options") or "") for t in facts.get("tmpfs") or []
             if t.get("how") == "--tmpfs"}
    tmpfs.update(e.get("tmpfs") or {})
    for dest, options in sorted(tmpfs.items()):
        argv += ["--tmpfs", f"{dest}:{options}" if options else dest]
    for mount in facts.get("mounts") or []:
        source = mount.get("name") if mount.get("type") == "volume" and mount.get("name") else mount.get("source")
        rw = bool(mount.get("rw")) and mount.get("destination") != e.get("config_ro")
        argv += ["-v", f"{source}:{mount.get('destination')}{'' if rw else ':ro'}"]
    argv.append(str(facts.get("image")))
    argv += [str(a) for a in facts.get("cmd") or []]
    return argv


def _nginx_tmpfs(site: Site, facts: dict[str, Any]) -> dict[str, str]:
    """--tmpfs for nginx's temp paths (their common parent, sized like the host tmpfs) and the
    directories nginx writes at start, when they are not already tmpfs."""
    have = {str(t.get("destination")) for t in facts.get("tmpfs") or []}
    out: dict[str, str] = {}
    tmp = site.value("host.tmpfs") or {}
    paths = [str(p.get("path")) for p in tmp.get("paths") or [] if p.get("path")]
    on_tmpfs = all(((p.get("mount") or {}).get("fstype") == "tmpfs") for p in tmp.get("paths") or [])
    if paths and not on_tmpfs:
        parent = posixpath.commonpath([posixpath.dirname(p) for p in paths]) or "/tmp"
        layout = site.value("storage.layout") or {}
        largest = int(((layout.get("largest_layer") or {}).get("bytes")) or 0)
        image = int(((layout.get("largest_image") or {}).get("bytes")) or 0)
        size = required_bytes(largest, image, site.params("tmpfs.size"), 64 * 1024 * 1024)
        if parent not in have:
            out[parent] = f"rw,noexec,nosuid,size={size_option(size)}"
    for directory in NGINX_RUNTIME_DIRS:
        if directory not in have and directory not in out:
            out[directory] = "rw,noexec,nosuid,size=16m"
    return out


def plan_for(site: Site, facts: dict[str, Any], endpoint: str) -> ContainerChange | None:
    """The change one container needs (None when it needs none)."""
    failing = site.failing_ids()
    edits: dict[str, Any] = {}
    why: list[str] = []
    checks: set[str] = set()
    role = str(facts.get("role"))
    if "container.runtime" in failing:
        if facts.get("privileged"):
            edits["privileged"] = False
            why.append("no --privileged")
        if facts.get("cap_add"):
            edits["cap_add"] = []
            why.append("no --cap-add")
        mount = facts.get("config_mount")
        if mount and mount.get("rw"):
            edits["config_ro"] = str(facts.get("config_in_container"))
            why.append("config mounted read-only")
        exempt = {str(x) for x in site.params("container.runtime").get("read_only_exempt") or []}
        if not facts.get("read_only_rootfs") and facts.get("name") not in exempt and facts.get("image") not in exempt:
            edits["read_only"] = True
            why.append("--read-only")
        if str(facts.get("restart_policy") or "no") not in RESTART_OK:
            edits["restart"] = RESTART
            why.append(f"--restart {RESTART}")
        if edits:
            checks.add("container.runtime")
    if role == "registry" and any(c in failing for c in PUBLISH_CHECKS):
        wide = [p for p in facts.get("published_ports") or []
                if not str(p.get("host_ip") or "").startswith("127.") and p.get("host_ip") != "::1"]
        if wide:
            edits["publish_loopback"] = True
            why.append("published on 127.0.0.1 only")
            checks |= {c for c in PUBLISH_CHECKS if c in failing}
    if role == "nginx" and (edits.get("read_only") or any(c in failing for c in TMPFS_CHECKS)):
        tmpfs = _nginx_tmpfs(site, facts)
        if tmpfs:
            edits["tmpfs"] = tmpfs
            why.append("--tmpfs " + ", ".join(sorted(tmpfs)))
            checks |= {c for c in TMPFS_CHECKS if c in failing}
    if not edits:
        return None
    return ContainerChange(name=str(facts.get("name")), id=str(facts.get("id")), role=role, edits=edits,
                           before=tuple(run_line(facts)), after=tuple(run_line(facts, edits)), endpoint=endpoint,
                           generator=NAME, checks=tuple(sorted(checks)), why=tuple(why))


def compose_file(facts: dict[str, Any]) -> tuple[str, str] | None:
    """(compose file on the host, service) of a container docker-compose created, from its labels."""
    labels = facts.get("compose") or {}
    files = str(labels.get("com.docker.compose.project.config_files") or "")
    service = labels.get("com.docker.compose.service")
    if not files or not service:
        return None
    first = files.split(",")[0]
    base = str(labels.get("com.docker.compose.project.working_dir") or "/")
    return posixpath.normpath(posixpath.join(base, first)), str(service)


def _port(entry: Any) -> Any:
    if isinstance(entry, dict):
        return {**entry, "host_ip": "127.0.0.1"}
    text = str(entry)
    parts = text.split(":")
    if len(parts) == 1:
        return f"127.0.0.1:{text}:{text.split('/')[0]}"
    if len(parts) == 2:
        return f"127.0.0.1:{text}"
    return ":".join(["127.0.0.1", *parts[-2:]]) if not text.startswith("[") else \
        "127.0.0.1:" + ":".join(text.rsplit("]:", 1)[1].split(":"))


def _volume_ro(entry: Any, dest: str) -> Any:
    if isinstance(entry, dict):
        return {**entry, "read_only": True} if entry.get("target") == dest else entry
    parts = str(entry).split(":")
    if len(parts) >= 2 and parts[1] == dest:
        opts = [o for o in (parts[2].split(",") if len(parts) > 2 else []) if o not in ("rw", "ro")]
        return ":".join([parts[0], parts[1], ",".join(["ro", *opts])])
    return entry


def edit_service(service: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """A compose service with `edits` applied (the same changes re-creation makes)."""
    out = dict(service)
    if edits.get("privileged") is False:
        out.pop("privileged", None)
    if "cap_add" in edits:
        out.pop("cap_add", None)
    if edits.get("read_only"):
        out["read_only"] = True
    if edits.get("restart"):
        out["restart"] = edits["restart"]
    if edits.get("publish_loopback"):
        ports = [_port(p) for p in out.get("ports") or []]
        out["ports"] = [p for i, p in enumerate(ports) if p not in ports[:i]]
    if edits.get("config_ro"):
        out["volumes"] = [_volume_ro(v, edits["config_ro"]) for v in out.get("volumes") or []]
    if edits.get("tmpfs"):
        have = [str(t) for t in (out.get("tmpfs") or [])] if not isinstance(out.get("tmpfs"), str) \
            else [out["tmpfs"]]
        out["tmpfs"] = have + [f"{d}:{o}" for d, o in sorted(edits["tmpfs"].items())
                               if not any(h.split(":")[0] == d for h in have)]
    return out


def compose_change(site: Site, plan: Plan, change: ContainerChange, path: str, service: str) -> None:
    """The compose file with the service's changes, as a file change (installed with the re-creation,
    so the file keeps describing what runs)."""
    live = read_live(path)
    if live is None:
        plan.notes.append(f"{NAME}: compose file {path} (service {service}) is not readable here: only the "
                          "docker run line is shown")
        return
    pending = next((f for f in plan.files if f.path == path), None)
    try:
        doc = bounded.load_yaml(pending.content if pending and pending.content is not None else live, path) or {}
    except (bounded.InputError, yaml.YAMLError) as exc:
        plan.notes.append(f"{NAME}: compose file {path} does not parse ({exc}): not changed")
        return
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not isinstance(services.get(service), dict):
        plan.notes.append(f"{NAME}: compose file {path} has no service {service!r}: not changed")
        return
    services[service] = edit_service(services[service], change.edits)
    checks = tuple(sorted({*change.checks, *(pending.checks if pending else ())}))
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    content = (header(NAME, checks, extra=["Comments of the original file are not kept (PyYAML)."]) + body).encode()
    if pending is not None:
        plan.files.remove(pending)
    plan.files.append(FileChange(path=path, generator=NAME, checks=checks, content=content, validate="compose",
                                 note=f"compose service {service}: {'; '.join(change.why)}"))


def generate(site: Site, plan: Plan) -> None:
    if any(c.generator == NAME for c in plan.containers):
        return  # already run (fstab-tmpfs hands containerised nginx over to this generator)
    discovered = site.value("host.discovery") or {}
    endpoint = str((discovered.get("docker") or {}).get("socket") or "")
    for facts in discovered.get("container_runtime") or []:
        if not facts.get("role"):
            continue
        change = plan_for(site, facts, endpoint)
        if change is None:
            continue
        plan.containers.append(change)
        plan.expected |= set(change.checks)
        compose = compose_file(facts)
        if compose is not None:
            compose_change(site, plan, change, *compose)
        text = (f"# container {change.name}: {'; '.join(change.why)}\n# before\n{shlex.join(change.before)}\n"
                f"# after (environment, labels, networks and volumes are copied from the running container)\n"
                f"{shlex.join(change.after)}\n")
        plan.artifacts.append(Artifact(f"containers/{change.name}.run", text.encode(), NAME, change.checks,
                                       "the changed docker run line (--apply --recreate-containers re-creates it)"))


# ---------------------------------------------------------------- apply and rollback (Engine API)
class Engine:
    """A small synchronous Engine API client (apply runs outside the audit's event loop)."""

    def __init__(self, label: str, timeout: float = 30.0) -> None:
        endpoint = endpoint_of(label)
        if endpoint.kind == "unix":
            self.client = httpx.Client(transport=httpx.HTTPTransport(uds=endpoint.address), base_url="http://docker",
                                       timeout=timeout)
        else:
            self.client = httpx.Client(base_url=f"http://{endpoint.address}", timeout=timeout)

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204, 304), **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code not in ok:
            raise StepError(f"Docker Engine API {method} {path}: {response.status_code} {response.text.strip()[:300]}")
        return response.json() if response.content and "json" in response.headers.get("content-type", "") else None

    def inspect(self, ref: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/containers/{ref}/json"))

    def close(self) -> None:
        self.client.close()


def endpoint_of(label: str) -> docker.Endpoint:
    if label.startswith("tcp://"):
        return docker.Endpoint("tcp", label[len("tcp://"):], "discovery")
    return docker.Endpoint("unix", label, "discovery")


def create_body(inspect: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """The container's own create body (Config + HostConfig + its networks) with `edits` applied."""
    config = dict(inspect.get("Config") or {})
    host = dict(inspect.get("HostConfig") or {})
    if edits.get("privileged") is False:
        host["Privileged"] = False
    if "cap_add" in edits:
        host["CapAdd"] = list(edits["cap_add"])
    if edits.get("read_only"):
        host["ReadonlyRootfs"] = True
    if edits.get("restart"):
        host["RestartPolicy"] = {"Name": edits["restart"], "MaximumRetryCount": 0}
    if edits.get("publish_loopback"):
        host["PortBindings"] = {spec: [{"HostIp": "127.0.0.1", "HostPort": b.get("HostPort", "")}
                                       for b in (binds or [])][:1]
                                for spec, binds in (host.get("PortBindings") or {}).items()}
    if edits.get("tmpfs"):
        host["Tmpfs"] = {**(host.get("Tmpfs") or {}), **edits["tmpfs"]}
    if edits.get("config_ro"):
        dest = edits["config_ro"]
        binds = []
        for bind in host.get("Binds") or []:
            parts = bind.split(":")
            if len(parts) >= 2 and parts[1] == dest:
                opts = [o for o in (parts[2].split(",") if len(parts) > 2 else []) if o not in ("rw", "ro")]
                bind = ":".join([parts[0], parts[1], ",".join(["ro", *opts])])
            binds.append(bind)
        host["Binds"] = binds
        host["Mounts"] = [{**m, "ReadOnly": True} if m.get("Target") == dest else m for m in host.get("Mounts") or []]
    networks = (inspect.get("NetworkSettings") or {}).get("Networks") or {}
    endpoints = {}
    for net, settings in networks.items():
        if net in ("bridge", "host", "none"):
            continue
        endpoints[net] = {k: settings.get(k) for k in ("IPAMConfig", "Aliases", "Links") if settings.get(k)}
    return {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}


def _watch(engine: Engine, ref: str) -> None:
    deadline = time.monotonic() + START_WATCH_SECONDS
    while time.monotonic() < deadline:
        state = engine.inspect(ref).get("State") or {}
        if not state.get("Running"):
            raise StepError(f"the re-created container exited at start (exit {state.get('ExitCode')}, "
                            f"{state.get('Error') or 'see docker logs'})")
        time.sleep(0.3)


def recreate(change: ContainerChange, step: dict[str, Any], save: Any, stamp: str) -> str:
    """Stop and rename the old container aside, create and start the new one; returns its id.
    `step` is updated (and `save()` called) before every action so rollback knows where it stopped."""
    engine = Engine(change.endpoint)
    try:
        old = engine.inspect(change.id)
        body = create_body(old, change.edits)
        aside = f"{change.name}-regaudit-{stamp}"
        step.update(old_id=old["Id"], aside=aside, was_running=bool((old.get("State") or {}).get("Running")))
        save()
        engine.call("POST", f"/containers/{old['Id']}/stop", params={"t": 10})
        engine.call("POST", f"/containers/{old['Id']}/rename", params={"name": aside})
        step["renamed"] = True
        save()
        created = engine.call("POST", "/containers/create", params={"name": change.name}, json=body)
        step["new_id"] = created["Id"]
        save()
        engine.call("POST", f"/containers/{created['Id']}/start")
        _watch(engine, created["Id"])
        return str(created["Id"])
    finally:
        engine.close()


def undo(step: dict[str, Any]) -> None:
    """Remove the re-created container (volumes kept) and put the old one back, started."""
    engine = Engine(step["endpoint"])
    try:
        if step.get("new_id"):
            engine.call("DELETE", f"/containers/{step['new_id']}", ok=(200, 204, 404), params={"force": "true"})
        if step.get("renamed"):
            engine.call("POST", f"/containers/{step['old_id']}/rename", params={"name": step["name"]})
        if step.get("old_id") and step.get("was_running", True):
            engine.call("POST", f"/containers/{step['old_id']}/start")
    finally:
        engine.close()
