"""A containerised deployment nobody here built: other container and image names, other paths, another
port, the config passed on the command line (registry) and with -c (nginx), storage on a volume at /data.
Debian's own /etc/docker/registry/config.yml sits on the host, used by no process.

The inside audit, reaching the engine through DOCKER_HOST, must judge the configs the containers really
use (read through their bind mounts) and say nothing of files no process uses. Namespaces `rgz-*`, one
dockerd, torn down at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lab
import pytest
from lab import containers, netns
from lab.lifecycle import wait_tcp
from lab.paths import Paths
from lab.variants import Variant

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

VARIANT = Variant(name="container-foreign", prefix="rgz-", content_profile="hardened", containers="foreign")
PORT = 6000
REGISTRY_IMAGE = "corp.example/platform/distribution:2.8.2"
NGINX_IMAGE = "corp.example/edge/nginx-proxy:1.22"
UNUSED = "/etc/docker/registry/config.yml"

REGISTRY_CONFIG = f"""\
version: 0.1
log:
  formatter: json
storage:
  filesystem:
    rootdirectory: /data
  delete:
    enabled: true
http:
  addr: ":{PORT}"
  host: https://hub.corp.example
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""
NGINX_CONFIG = f"""\
user www-data;
worker_processes 1;
pid /run/edge.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log /dev/stdout;
    fastcgi_temp_path /cache/fastcgi;
    uwsgi_temp_path /cache/uwsgi;
    scgi_temp_path /cache/scgi;
    server {{
        listen 0.0.0.0:8088;
        client_max_body_size 0;
        client_body_temp_path /cache/body;
        proxy_temp_path /cache/proxy;
        proxy_read_timeout 900s;
        proxy_send_timeout 900s;
        location /v2/ {{ proxy_pass http://hub:{PORT}; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def foreign() -> Iterator[dict[str, Any]]:
    reason = lab.available() or containers.available()
    if reason:
        pytest.skip(f"lab: {reason}")
    if not Path(UNUSED).is_file():
        pytest.skip(f"{UNUSED} (Debian's docker-registry package) is not installed")
    p = Paths.for_variant(VARIANT.name)
    shutil.rmtree(p.base, ignore_errors=True)
    netns.destroy(VARIANT)
    state: dict[str, Any] = {"processes": []}
    srv = p.base / "srv"
    try:
        netns.create(VARIANT)
        p.logs.mkdir(parents=True, exist_ok=True)
        containers.start_engine(VARIANT, p, state)
        containers.build_images(p)
        for image, new in ((containers.REGISTRY_IMAGE, REGISTRY_IMAGE), (containers.NGINX_IMAGE, NGINX_IMAGE)):
            containers.docker(p, "tag", image, new)
            containers.docker(p, "rmi", image)
        (srv / "hub").mkdir(parents=True)
        (srv / "edge").mkdir(parents=True)
        (srv / "hub" / "hub.yaml").write_text(REGISTRY_CONFIG)
        (srv / "edge" / "edge.conf").write_text(NGINX_CONFIG)
        containers.docker(p, "network", "create", "corpnet")
        containers.docker(p, "run", "-d", "--name", "hub", "--network", "corpnet", "-p", f"127.0.0.1:{PORT}:{PORT}",
                          "--restart", "always", "--read-only", "-v", f"{srv}/hub/hub.yaml:/srv/conf/hub.yaml:ro",
                          "-v", "hubdata:/data", "--entrypoint", "/bin/registry", REGISTRY_IMAGE, "serve",
                          "/srv/conf/hub.yaml")
        containers.docker(p, "run", "-d", "--name", "edge", "--network", "corpnet", "-p", "127.0.0.1:8088:8088",
                          "--restart", "always", "--read-only", "--tmpfs", "/cache:rw,noexec,nosuid,size=2g",
                          "--tmpfs", "/run:rw,size=1m", "-v", f"{srv}/edge:/opt/edge:ro", NGINX_IMAGE,
                          "nginx", "-c", "/opt/edge/edge.conf", "-g", "daemon off;")
        wait_tcp(VARIANT.ns("registry"), "127.0.0.1", PORT, what="hub")
        yield {"state": state, "paths": p, "srv": srv}
    finally:
        containers.stop_engine(state)
        containers.unmount_below(p.base)
        netns.destroy(VARIANT)
        shutil.rmtree(p.base, ignore_errors=True)


def audit(foreign: dict[str, Any], tmp: Path) -> dict[str, Any]:
    state = foreign["state"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("REGAUDIT_", "DOCKER_"))},
           "REGAUDIT_STATE_DIR": str(tmp / "state")}
    proc = subprocess.run(["ip", "netns", "exec", VARIANT.ns("registry"), "env",
                           f"DOCKER_HOST={state['docker']['host']}", "regaudit", "audit", "--inside",
                           "--no-progress", "--no-history", "--format", "json", "--output", str(tmp / "out"),
                           "--evidence-out", str(tmp / "evidence.json")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return {"report": json.loads((tmp / "out" / "regaudit.json").read_text()),
            "evidence": json.loads((tmp / "evidence.json").read_text())}


def test_the_configs_the_containers_use_are_judged(foreign: dict[str, Any], tmp_path: Path) -> None:
    out = audit(foreign, tmp_path)
    records = out["evidence"]["probes"]
    srv = foreign["srv"]
    registry = records["config.registry"]["value"]
    assert registry["path"] == f"{srv}/hub/hub.yaml"
    assert "docker container hub" in registry["source"] and "container command argument" in registry["source"]
    nginx = records["config.nginx"]["value"]
    assert nginx["path"] == f"{srv}/edge/edge.conf" and "docker container edge" in nginx["source"]
    discovery = records["host.discovery"]["value"]
    assert discovery["docker"]["endpoint_source"] == "DOCKER_HOST"
    assert {c["name"] for c in discovery["container_runtime"]} == {"hub", "edge"}
    # each container's own sockets, read in its network namespace through /proc/PID/net
    listening = {c["name"]: {s["endpoint"] for s in c["listening"]} for c in discovery["container_runtime"]}
    assert any(e.endswith(f":{PORT}") for e in listening["hub"]), listening
    assert "0.0.0.0:8088" in listening["edge"], listening
    results = out["report"]["results"]
    by = {(r["check"], r["subject"]): r for r in results}
    assert by[("container.runtime", "container hub (registry)")]["status"] == "pass"
    assert by[("container.runtime", "container edge (nginx)")]["status"] == "pass"
    loopback = [r for r in results if r["check"] == "registry.bind-loopback"]
    assert loopback and all(r["status"] == "pass" for r in loopback)
    assert "127.0.0.1:6000" in json.dumps([r["observed"] for r in loopback])
    tmpfs = [r for r in results if r["check"] == "tmpfs.mounted"]
    assert tmpfs and all(r["status"] == "pass" for r in tmpfs)
    storage = records["storage.layout"]["value"] if records.get("storage.layout", {}).get("state") == "ok" else {}
    assert "/volumes/hubdata/_data" in json.dumps(storage), "the storage is read through the volume"


def test_nothing_is_judged_on_files_no_process_uses(foreign: dict[str, Any], tmp_path: Path) -> None:
    out = audit(foreign, tmp_path)
    judged = json.dumps([{k: r.get(k) for k in ("subject", "message", "observed")} for r in out["report"]["results"]])
    assert UNUSED not in judged
    configs = {item["path"] for item in out["evidence"]["probes"]["files.stat"]["value"]["configs"]}
    assert configs == {f"{foreign['srv']}/hub/hub.yaml", f"{foreign['srv']}/edge/edge.conf"}
