"""Self-test: verify that a running variant really has the properties it claims, independently of
regaudit (openssl, curl, nc, ss, /proc mountinfo, file modes, iptables-save, the config files).

Contract: `run(info) -> Report`. Each variant has a list of expected properties (PROPERTIES); for a
variant with a defects file (weak), every defect's `verify` names a property that must hold, so
each seeded defect is verified on the wire or on disk. `Report.ok` is True only if all hold.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import probes
from .procs import alive, cmdline
from .state import LabInfo
from .variants import ALLOWED_V4, ALLOWED_V6, GUIDE_CIPHERS, ROLES, VARIANTS

Verdict = tuple[bool, str]
Verifier = Callable[[LabInfo, str | None], Verdict]
VERIFIERS: dict[str, Verifier] = {}
LEGACY_CLIENT = "DEFAULT@SECLEVEL=0"  # so that a refusal is the server's, not our OpenSSL's
CBC_SUITE = "ECDHE-RSA-AES128-SHA"
LARGEST_LAYER = 150 * 1024 * 1024


def verifier(name: str) -> Callable[[Verifier], Verifier]:
    def deco(fn: Verifier) -> Verifier:
        VERIFIERS[name] = fn
        return fn
    return deco


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    defect: str | None = None
    seconds: float = 0.0
    skipped: bool = False


@dataclass
class Report:
    variant: str
    results: list[Result] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok or r.skipped for r in self.results)

    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def render(self) -> str:
        lines = [f"lab selftest: {self.variant}"]
        for r in self.results:
            tag = f" [defect {r.defect}]" if r.defect else ""
            word = "skip" if r.skipped else "ok  " if r.ok else "FAIL"
            lines.append(f"  {word} {r.name}{tag}: {r.detail}")
        n_ok = sum(r.ok for r in self.results)
        lines.append(f"{'PASS' if self.ok else 'FAIL'}: {n_ok}/{len(self.results)}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "ok": self.ok,
                "results": [r.__dict__ for r in self.results]}


# ---------------------------------------------------------------- topology and processes
@verifier("topology")
def _topology(info: LabInfo, subject: str | None = None) -> Verdict:
    from .netns import existing, sh
    missing = set(info.namespaces.values()) - existing()
    if missing:
        return False, f"namespaces missing: {sorted(missing)}"
    root = sh(["ip", "-o", "addr"], check=False).stdout + sh(["ip", "-o", "link"], check=False).stdout
    leaks = [a for a in ("10.0.0.10/", "fd00::10/", "p-registry") if a in root]
    if leaks:
        return False, f"lab addresses/links in the root namespace: {leaks}"
    return True, f"{len(info.namespaces)} namespaces, nothing in the root network namespace"


@verifier("hosts-resolve")
def _hosts(info: LabInfo, subject: str | None = None) -> Verdict:
    reg = info.addresses["registry"]
    for role in ROLES:
        cp = info.run_in(role, ["getent", "ahosts", info.hostname])
        found = {line.split()[0] for line in cp.stdout.splitlines() if line.strip()}
        if not {reg["v4"], reg["v6"]} <= found:
            return False, f"{role}: {info.hostname} -> {sorted(found)}"
    return True, f"{info.hostname} -> {reg['v4']}, {reg['v6']} in every namespace"


@verifier("reach-443")
def _reach(info: LabInfo, subject: str | None = None) -> Verdict:
    reg = info.addresses["registry"]
    bad = [f"{role}->{fam}" for role in ROLES for fam in ("v4", "v6")
           if not probes.tcp_connect(info, role, reg[fam], 443)]
    return not bad, f"unreachable: {bad}" if bad else "every namespace reaches :443 over IPv4 and IPv6"


@verifier("processes")
def _processes(info: LabInfo, subject: str | None = None) -> Verdict:
    expect = {"registry": ["docker-registry", "serve", info["registry"]["config"]]}
    for i in range(1, len(VARIANTS[info.variant].registry_addrs)):  # one registry per listen address
        expect[f"registry-{i}"] = ["docker-registry", "serve"]
    if info.raw.get("nginx"):
        expect["nginx"] = ["nginx", "-c", info["nginx"]["config"]]
    if info.raw.get("apache"):
        expect["apache"] = ["apache2", "-d", info["apache"]["server_root"], "-f", info["apache"]["config"]]
    if VARIANTS[info.variant].ocsp_stapling:  # the OCSP responder Apache/nginx staple from
        expect["ocsp-responder"] = ["lab.ocsp_responder"]
    recs = {r["name"]: r for r in info["processes"]}
    extra = sorted(set(recs) - set(expect) - {"token-service"})
    if extra:
        return False, f"processes this variant does not deploy are running: {extra}"
    for name, words in expect.items():
        rec = recs.get(name)
        if rec is None or not alive(rec):
            return False, f"{name} not running"
        cl = cmdline(int(rec["pid"]))
        if not all(w in cl.split() for w in words):
            return False, f"{name} cmdline {cl!r} lacks {words}"
    return True, f"{', '.join(expect)} running with their config on the command line"


@verifier("registry-health")
def _health(info: LabInfo, subject: str | None = None) -> Verdict:
    r = probes.curl(info, "registry", info["registry"]["health_url"])
    return r.status == 200, f"/debug/health -> {r.status} {r.body.strip()[:80]}"


# ---------------------------------------------------------------- listeners
def _listen_check(info: LabInfo, process: str, expected: set[str]) -> Verdict:
    got = probes.listen_addrs(info, process)
    return got == expected, f"{process} listens on {sorted(got)} (expected {sorted(expected)})"


@verifier("registry-listen-loopback")
def _reg_loopback(info: LabInfo, subject: str | None = None) -> Verdict:
    return _listen_check(info, "docker-registry", {"127.0.0.1:5000", "127.0.0.1:5001"})


@verifier("registry-listen-all")
def _reg_all(info: LabInfo, subject: str | None = None) -> Verdict:
    ok, detail = _listen_check(info, "docker-registry", {"*:5000", "127.0.0.1:5001"})
    reg = info.addresses["registry"]
    reached = [fam for fam in ("v4", "v6") if probes.tcp_connect(info, "outsider", reg[fam], 5000)]
    return ok and reached == ["v4", "v6"], f"{detail}; outsider connects to :5000 over {reached}"


@verifier("registry-listen-routable")
def _reg_routable(info: LabInfo, subject: str | None = None) -> Verdict:
    return _listen_check(info, "docker-registry", {"10.0.0.10:5000", "[fd00::10]:5000", "127.0.0.1:5001"})


@verifier("nginx-listen-loopback")
def _nginx_lo(info: LabInfo, subject: str | None = None) -> Verdict:
    return _listen_check(info, "nginx", {"127.0.0.1:8080"})


@verifier("nginx-listen-edge")
def _nginx_edge(info: LabInfo, subject: str | None = None) -> Verdict:
    got = probes.listen_addrs(info, "nginx")
    want_any = [{"*:443", "*:80"}, {"0.0.0.0:443", "[::]:443", "0.0.0.0:80", "[::]:80"}]
    return got in want_any, f"nginx listens on {sorted(got)}"


@verifier("no-apache")
def _no_apache(info: LabInfo, subject: str | None = None) -> Verdict:
    got = probes.listen_addrs(info, "apache2")
    return not got and not info.raw.get("apache"), f"apache2 listens on {sorted(got) or 'nothing'}"


@verifier("no-nginx")
def _no_nginx(info: LabInfo, subject: str | None = None) -> Verdict:
    got = probes.listen_addrs(info, "nginx")
    return not got and not info.raw.get("nginx"), f"nginx listens on {sorted(got) or 'nothing'}"


@verifier("apache-proxies-registry")
def _apache_direct(info: LabInfo, subject: str | None = None) -> Verdict:
    text = Path(info["apache"]["config"]).read_text()
    lines = [ln.split() for ln in text.splitlines() if ln.strip().startswith("ProxyPass ")]
    ok = any(len(ln) >= 3 and ln[2] == "http://127.0.0.1:5000/" and "nocanon" in ln for ln in lines)
    return ok, f"ProxyPass lines: {[' '.join(ln) for ln in lines]}"


@verifier("apache-proxy-limits-weak")
def _apache_limits_weak(info: LabInfo, subject: str | None = None) -> Verdict:
    text = Path(info["apache"]["config"]).read_text()
    words = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    limit = [w for w in words if w[0] == "LimitRequestBody"]
    timeout = [w[1] for w in words if w[0] == "ProxyTimeout" and len(w) > 1]
    return not limit and timeout == ["60"], f"LimitRequestBody {limit or 'unset'}; ProxyTimeout {timeout}"


@verifier("nginx-recipe-header")
def _api_version(info: LabInfo, subject: str | None = None) -> Verdict:
    r = _anon(info)
    got = r.headers.get("docker-distribution-api-version", "")
    return r.status == 401 and got == "registry/2.0", f"anonymous /v2/ -> {r.status}, API version header {got!r}"


@verifier("nginx-recipe-header-absent")
def _api_version_absent(info: LabInfo, subject: str | None = None) -> Verdict:
    d = probes.nginx_directives(info["nginx"]["config"])
    added = [a for a in d.get("add_header", []) if a and a[0].lower().strip("'\"") == "docker-distribution-api-version"]
    return not added, f"add_header Docker-Distribution-Api-Version: {added or 'none'}"


@verifier("nginx-satisfy-any-hole")
def _satisfy_any(info: LabInfo, subject: str | None = None) -> Verdict:
    d = probes.nginx_directives(info["nginx"]["config"])
    r = _anon(info)
    c = probes.curl(info, "outsider", f"{info.url}/v2/_catalog")
    ok = ["any"] in d.get("satisfy", []) and ["all"] in d.get("allow", []) and ["Registry realm"] in \
        d.get("auth_basic", []) and r.status == 200 and c.status == 200
    return ok, f"satisfy {d.get('satisfy')}, allow {d.get('allow')}; anonymous /v2/ -> {r.status}, " \
        f"/v2/_catalog -> {c.status}"


@verifier("apache-listen")
def _apache(info: LabInfo, subject: str | None = None) -> Verdict:
    got = probes.listen_addrs(info, "apache2")
    want_any = [{"*:443", "*:80"}, {"0.0.0.0:443", "[::]:443", "0.0.0.0:80", "[::]:80"}]
    return got in want_any, f"apache2 listens on {sorted(got)}"


@verifier("registry-port-closed-outside")
def _port_closed(info: LabInfo, subject: str | None = None) -> Verdict:
    reg = info.addresses["registry"]
    open_ = [f"{role}->{fam}" for role in ("ci", "outsider", "proxy") for fam in ("v4", "v6")
             if probes.tcp_connect(info, role, reg[fam], 5000, wait=1)]
    return not open_, f"registry port reachable: {open_}" if open_ else "no namespace reaches :5000"


@verifier("firewall-matrix")
def _fw_matrix(info: LabInfo, subject: str | None = None) -> Verdict:
    reg = info.addresses["registry"]
    expect = {"proxy": True, "ci": True, "runtime": True, "outsider": False}
    wrong = []
    seen = []
    for role, want in expect.items():
        for fam in ("v4", "v6"):
            got = probes.tcp_connect(info, role, reg[fam], 5000, wait=2)
            seen.append(f"{role}/{fam}={'open' if got else 'blocked'}")
            if got != want:
                wrong.append(f"{role}/{fam}")
    return not wrong, ("mismatch: " + ", ".join(wrong) + "; ") * bool(wrong) + " ".join(seen)


# ---------------------------------------------------------------- http
@verifier("http-redirects")
def _redirect(info: LabInfo, subject: str | None = None) -> Verdict:
    r = probes.curl(info, "ci", f"http://{info.hostname}/v2/")
    loc = r.headers.get("location", "")
    return r.status in (301, 302, 308) and loc.startswith("https://"), f":80 /v2/ -> {r.status} {loc}"


def _anon(info: LabInfo) -> probes.HttpResult:
    return probes.curl(info, "ci", f"{info.url}/v2/")


@verifier("auth-basic-required")
def _auth_basic(info: LabInfo, subject: str | None = None) -> Verdict:
    r = _anon(info)
    ch = r.headers.get("www-authenticate", "")
    with probes.netrc(info) as nf:
        a = probes.curl(info, "ci", f"{info.url}/v2/", netrc_file=nf)
    ok = r.status == 401 and ch.lower().startswith("basic") and a.status == 200
    return ok, f"anonymous /v2/ -> {r.status} ({ch}); with credentials -> {a.status}"


@verifier("auth-absent")
def _auth_absent(info: LabInfo, subject: str | None = None) -> Verdict:
    r = _anon(info)
    c = probes.curl(info, "outsider", f"{info.url}/v2/_catalog")
    return r.status == 200 and c.status == 200, f"anonymous /v2/ -> {r.status}, /v2/_catalog -> {c.status}"


@verifier("auth-bearer-challenge")
def _bearer(info: LabInfo, subject: str | None = None) -> Verdict:
    r = _anon(info)
    ch = r.headers.get("www-authenticate", "")
    tok = info["token"]
    ok = (r.status == 401 and ch.startswith("Bearer ") and f'realm="{tok["realm"]}"' in ch
          and f'service="{tok["service"]}"' in ch)
    return ok, f"anonymous /v2/ -> {r.status} {ch}"


@verifier("token-config")
def _token_config(info: LabInfo, subject: str | None = None) -> Verdict:
    conf = yaml.safe_load(Path(info["registry"]["config"]).read_text())
    t = conf.get("auth", {}).get("token", {})
    tok = info["token"]
    ok = (t.get("realm", "").startswith("https://") and t.get("service") == tok["service"]
          and t.get("issuer") == tok["issuer"] and Path(t.get("rootcertbundle", "")).is_file()
          and t.get("autoredirect") is False and Path(tok["acl"]).is_file())
    acl = yaml.safe_load(Path(tok["acl"]).read_text())
    repo_actions: dict[str, list[str]] = {}
    for e in acl.get("acl", []):
        if e.get("type") == "repository":
            repo_actions.setdefault(e["account"], []).extend(e["actions"])
    users = tok["users"]
    ok = ok and repo_actions.get(users["pull"]) == ["pull"] and "push" in repo_actions.get(users["push"], [])
    return ok, f"auth.token {t}; repository actions by user {repo_actions}"


@verifier("token-service-up")
def _token_up(info: LabInfo, subject: str | None = None) -> Verdict:
    tok = info["token"]
    if not tok.get("pid"):
        return False, tok.get("note", "token service not recorded")
    r = probes.curl(info, "ci", f"{tok['realm']}?service={tok['service']}")
    return r.status in (200, 401), f"anonymous token request -> {r.status}"


@verifier("token-scopes")
def _token_scopes(info: LabInfo, subject: str | None = None) -> Verdict:
    """The pull-only user's token cannot start an upload; the push user's can (upload cancelled)."""
    repo = "lab/selftest-scope"
    scope = f"repository:{repo}:pull,push"
    url = f"{info.url}/v2/{repo}/blobs/uploads/"
    users = info["token"]["users"]
    got = {}
    for role in ("pull", "push"):
        with probes.bearer_header(info, scope, users[role]) as hf:
            r = probes.curl(info, "ci", url, "-X", "POST", "-H", f"@{hf}")
            got[role] = r.status
            loc = r.headers.get("location", "")
            if r.status == 202 and loc:
                path = "/" + loc.split("://", 1)[-1].split("/", 1)[1] if "://" in loc else loc
                probes.curl(info, "ci", f"{info.url}{path}", "-X", "DELETE", "-H", f"@{hf}")
    return got["pull"] in (401, 403) and got["push"] == 202, f"POST upload: {got}"


def _nosniff(info: LabInfo) -> str | None:
    if info["auth"]["scheme"] == "basic":
        with probes.netrc(info) as nf:
            r = probes.curl(info, "ci", f"{info.url}/v2/", netrc_file=nf)
    elif info["auth"]["scheme"] == "token":
        with probes.bearer_header(info) as hf:
            r = probes.curl(info, "ci", f"{info.url}/v2/", "-H", f"@{hf}")
    else:
        r = _anon(info)
    return r.headers.get("x-content-type-options") if r.status == 200 else f"status {r.status}"


@verifier("nosniff-present")
def _nosniff_yes(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _nosniff(info)
    return got == "nosniff", f"X-Content-Type-Options on /v2/: {got}"


@verifier("nosniff-absent")
def _nosniff_no(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _nosniff(info)
    conf = yaml.safe_load(Path(info["registry"]["config"]).read_text())
    headers = conf.get("http", {}).get("headers")
    return got is None and not headers, f"X-Content-Type-Options on /v2/: {got}; http.headers: {headers}"


@verifier("body-limit-10m")
def _body_limit(info: LabInfo, subject: str | None = None) -> Verdict:
    blob = info.base_dir / "logs" / "body-11m.bin"
    blob.write_bytes(b"\0" * (11 * 1024 * 1024))
    try:
        r = probes.curl(info, "ci", f"{info.url}/v2/lab/body-test/blobs/uploads/", "-X", "POST",
                        "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{blob}")
    finally:
        blob.unlink()
    d = probes.nginx_directives(info["nginx"]["config"])
    return r.status == 413 and d.get("client_max_body_size") == [["10m"]], \
        f"11 MiB body -> {r.status}; client_max_body_size {d.get('client_max_body_size')}"


# ---------------------------------------------------------------- TLS
@verifier("tls-chain-valid")
def _chain(info: LabInfo, subject: str | None = None) -> Verdict:
    text = probes.peer_cert_text(info, "ci")
    m = re.search(r"notAfter=(.+)", text)
    if not m:
        return False, "chain does not verify against the lab CA for the hostname"
    end = dt.datetime.strptime(m.group(1).strip(), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    days = (end - dt.datetime.now(dt.UTC)).days
    return days >= 30, f"verifies against the lab CA; {days} days left"


@verifier("tls-cert-expires-soon")
def _expiring(info: LabInfo, subject: str | None = None) -> Verdict:
    text = probes.peer_cert_text(info, "ci")
    m = re.search(r"notAfter=(.+)", text)
    if not m:
        return False, "no verifiable certificate"
    end = dt.datetime.strptime(m.group(1).strip(), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    days = (end - dt.datetime.now(dt.UTC)).days
    return 0 < days < 30, f"served certificate valid, {days} days left (< 30)"


@verifier("tls-rsa-and-ecdsa")
def _both_keys(info: LabInfo, subject: str | None = None) -> Verdict:
    rsa = probes.tls_handshake(info, "ci", "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")
    ec = probes.tls_handshake(info, "ci", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
    return rsa.ok and ec.ok, f"RSA: {rsa.cipher or 'refused'}; ECDSA: {ec.cipher or 'refused'}"


@verifier("tls13-offered")
def _tls13(info: LabInfo, subject: str | None = None) -> Verdict:
    h = probes.tls_handshake(info, "ci", "-tls1_3")
    return h.ok and h.protocol == "TLSv1.3", f"-tls1_3: {h.protocol or 'refused'} {h.cipher}"


def _legacy(info: LabInfo) -> dict[str, probes.Handshake]:
    return {flag: probes.tls_handshake(info, "ci", flag, "-cipher", LEGACY_CLIENT)
            for flag in ("-tls1", "-tls1_1")}


@verifier("tls-legacy-refused")
def _legacy_refused(info: LabInfo, subject: str | None = None) -> Verdict:
    res = _legacy(info)
    detail = ", ".join(f"{k}: {h.protocol or 'refused'}" for k, h in res.items())
    return not any(h.ok for h in res.values()), detail


@verifier("tls-legacy-accepted")
def _legacy_accepted(info: LabInfo, subject: str | None = None) -> Verdict:
    res = _legacy(info)
    ok = res["-tls1"].protocol == "TLSv1" and res["-tls1_1"].protocol == "TLSv1.1"
    return ok, ", ".join(f"{k}: {h.protocol or 'refused'} {h.cipher}" for k, h in res.items())


@verifier("tls-only-guide-ciphers")
def _guide_ciphers(info: LabInfo, subject: str | None = None) -> Verdict:
    accepted = [s for s in (CBC_SUITE, "ECDHE-RSA-AES256-SHA", "AES128-SHA", "AES256-GCM-SHA384",
                            "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256")
                if probes.tls_handshake(info, "ci", "-tls1_2", "-cipher", f"{s}:@SECLEVEL=0").ok]
    return not accepted, f"TLS 1.2 suites outside {GUIDE_CIPHERS} accepted: {accepted}"


@verifier("tls-cbc-accepted")
def _cbc(info: LabInfo, subject: str | None = None) -> Verdict:
    h = probes.tls_handshake(info, "ci", "-tls1_2", "-cipher", f"{CBC_SUITE}:@SECLEVEL=0")
    n = probes.tls_handshake(info, "ci", "-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0")
    return h.ok and n.ok, f"{CBC_SUITE}: {h.cipher or 'refused'}; AES128-SHA (no FS): {n.cipher or 'refused'}"


def _hsts(info: LabInfo) -> str | None:
    r = _anon(info)
    return r.headers.get("strict-transport-security") if r.status else f"no answer: {r.status}"


@verifier("hsts-present")
def _hsts_yes(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _hsts(info)
    return bool(got) and "max-age=" in str(got), f"Strict-Transport-Security on the anonymous /v2/ answer: {got}"


@verifier("hsts-absent")
def _hsts_no(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _hsts(info)
    return got is None, f"Strict-Transport-Security on the anonymous /v2/ answer: {got}"


def _stapled(info: LabInfo) -> str:
    """s_client's OCSP line for a TLS 1.2 handshake that asks for a stapled response."""
    cp = info.run_in("ci", ["openssl", "s_client", "-connect", f"{info.hostname}:443", "-servername",
                            info.hostname, "-CAfile", str(info.ca), "-tls1_2", "-status"], input="", timeout=15)
    lines = [ln.strip() for ln in (cp.stdout + cp.stderr).splitlines()
             if ln.strip().startswith(("OCSP response:", "OCSP Response Status:", "Cert Status:"))]
    return "; ".join(lines) or "no OCSP line in s_client's output"


@verifier("ocsp-stapled")
def _ocsp_yes(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _stapled(info)
    return "successful" in got and "Cert Status: good" in got, f"openssl s_client -status: {got}"


@verifier("ocsp-not-stapled")
def _ocsp_no(info: LabInfo, subject: str | None = None) -> Verdict:
    got = _stapled(info)
    return "no response sent" in got.lower(), f"openssl s_client -status: {got}"


# ---------------------------------------------------------------- tmpfs, files, firewall, configs
def _tmpfs_mount(info: LabInfo) -> tuple[probes.Mount | None, str]:
    pid = int(info["nginx"]["pid"])
    mounts = [probes.mount_for(pid, info["nginx"][k]) for k in ("proxy_temp_path", "client_body_temp_path")]
    mp = info["tmpfs"]["mountpoint"]
    if any(m is None or m.mountpoint != mp or m.fstype != "tmpfs" for m in mounts):
        return None, f"temp paths not on the tmpfs {mp} in nginx's mount namespace: {mounts}"
    m = mounts[0]
    assert m is not None
    return m, f"{mp}: tmpfs {sorted(m.options)} size={m.super_options.get('size')}"


@verifier("tmpfs-hardened")
def _tmpfs_ok(info: LabInfo, subject: str | None = None) -> Verdict:
    m, detail = _tmpfs_mount(info)
    if m is None:
        return False, detail
    size = probes.size_bytes(m.super_options.get("size", "0"))
    return {"noexec", "nosuid"} <= m.options and size >= 2 * LARGEST_LAYER, detail


@verifier("tmpfs-undersized-exec")
def _tmpfs_weak(info: LabInfo, subject: str | None = None) -> Verdict:
    m, detail = _tmpfs_mount(info)
    if m is None:
        return False, detail
    size = probes.size_bytes(m.super_options.get("size", "0"))
    return "noexec" not in m.options and size < 2 * LARGEST_LAYER, detail


@verifier("fstab-matches")
def _fstab(info: LabInfo, subject: str | None = None) -> Verdict:
    lines = [ln.split() for ln in Path(info["fstab"]).read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    mp = info["tmpfs"]["mountpoint"]
    entry = next((f for f in lines if len(f) >= 4 and f[1] == mp), None)
    if entry is None:
        return False, f"no fstab entry for {mp}"
    m = probes.mount_for(int(info["nginx"]["pid"]), mp)
    opts = set(entry[3].split(","))
    flags = {o for o in opts if o in ("noexec", "nosuid", "nodev")}
    size = next((o.split("=", 1)[1] for o in opts if o.startswith("size=")), "0")
    ok = (m is not None and entry[2] == "tmpfs" and flags <= m.options
          and probes.size_bytes(size) == probes.size_bytes(m.super_options.get("size", "-1")))
    return ok, f"fstab: {' '.join(entry)}"


def _key_modes(info: LabInfo, subject: str | None = None) -> list[tuple[str, int, int]]:
    tls = info["tls"]
    paths = [str(info.base_dir / subject)] if subject else [tls["key"], tls["ecdsa_key"]]
    return [(p, *probes.file_mode(p)[:2]) for p in paths]


@verifier("tls-keys-0600")
def _keys_ok(info: LabInfo, subject: str | None = None) -> Verdict:
    modes = _key_modes(info)
    return all(m & 0o077 == 0 and uid == 0 for _, m, uid in modes), str([(p, oct(m)) for p, m, _ in modes])


@verifier("tls-key-world-readable")
def _keys_weak(info: LabInfo, subject: str | None = None) -> Verdict:
    modes = _key_modes(info, subject)
    if subject and str(info.base_dir / subject) not in (info["tls"]["key"], info["tls"]["ecdsa_key"]):
        return False, f"{subject} is not one of the served keys"
    return all(m & 0o004 for _, m, _ in modes), str([(p, oct(m)) for p, m, _ in modes])


def _htpasswd(info: LabInfo, subject: str | None = None) -> tuple[int, dict[str, str]]:
    path = str(info.base_dir / subject) if subject else info["auth"]["htpasswd"]
    entries = dict(ln.split(":", 1) for ln in Path(path).read_text().splitlines() if ":" in ln)
    return probes.file_mode(path)[0], entries


@verifier("htpasswd-bcrypt-private")
def _ht_ok(info: LabInfo, subject: str | None = None) -> Verdict:
    mode, entries = _htpasswd(info)
    ok = not mode & 0o007 and bool(entries) and all(h.startswith(("$2y$", "$2b$")) for h in entries.values())
    return ok, f"mode {oct(mode)}; hashes {[h[:4] for h in entries.values()]}"


@verifier("htpasswd-world-readable")
def _ht_world(info: LabInfo, subject: str | None = None) -> Verdict:
    mode, entries = _htpasswd(info, subject)
    return bool(mode & 0o004) and bool(entries), f"mode {oct(mode)}; {len(entries)} entries"


@verifier("htpasswd-weak")
def _ht_weak(info: LabInfo, subject: str | None = None) -> Verdict:
    mode, entries = _htpasswd(info, subject)
    nonbcrypt = [u for u, h in entries.items() if not h.startswith(("$2y$", "$2b$", "$2a$"))]
    return bool(mode & 0o004) and bool(nonbcrypt), f"mode {oct(mode)}; non-bcrypt entries {nonbcrypt}"


def _fw_expected(tool: str) -> list[str]:
    srcs = ALLOWED_V4 if tool == "iptables" else ALLOWED_V6
    return (["-A INPUT -i lo -j ACCEPT"]
            + [f"-A INPUT -s {s} -p tcp -m tcp --dport 5000 -j ACCEPT" for s in srcs]
            + ["-A INPUT -p tcp -m tcp --dport 5000 -j DROP"])


@verifier("firewall-rules")
def _fw_rules(info: LabInfo, subject: str | None = None) -> Verdict:
    got = {t: probes.firewall(info, t) for t in ("iptables", "ip6tables")}
    ok = all(got[t] == _fw_expected(t) for t in got)
    n4, n6 = len(got["iptables"]), len(got["ip6tables"])
    return ok, f"v4 {n4} rules, v6 {n6} rules (guide + docs/guide-notes.md#firewall-loopback-and-ipv6, in order)"


@verifier("firewall-absent")
def _fw_none(info: LabInfo, subject: str | None = None) -> Verdict:
    got = {t: probes.firewall(info, t) for t in ("iptables", "ip6tables")}
    return not any(got.values()), f"filter rules: {got}"


def _registry_conf(info: LabInfo) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(Path(info["registry"]["config"]).read_text())
    return data


@verifier("registry-config-guide")
def _reg_conf(info: LabInfo, subject: str | None = None) -> Verdict:
    c = _registry_conf(info)
    purge = c["storage"]["maintenance"]["uploadpurging"]
    ok = (c["log"]["formatter"] == "json" and purge == {"enabled": True, "age": "168h", "interval": "24h",
                                                          "dryrun": False}
          and c["storage"]["delete"]["enabled"] is True and c["http"]["host"].startswith("https://")
          and c["health"]["storagedriver"] == {"enabled": True, "interval": "10s", "threshold": 3})
    log = Path(info["registry"]["log"]).read_text().splitlines()
    json_lines = sum(1 for ln in log if ln.startswith("{"))
    return ok and json_lines > 0, f"log json ({json_lines} JSON lines), purging {purge}, delete on"


@verifier("registry-text-logs")
def _text_logs(info: LabInfo, subject: str | None = None) -> Verdict:
    c = _registry_conf(info)
    log = [ln for ln in Path(info["registry"]["log"]).read_text().splitlines() if ln.strip()]
    text = [ln for ln in log if ln.startswith("time=")]
    as_json = [ln for ln in log if ln.startswith("{")]
    return c["log"]["formatter"] == "text" and bool(text) and not as_json, \
        f"formatter {c['log']['formatter']}; {len(text)} logfmt lines, {len(as_json)} JSON lines"


@verifier("upload-purging-off")
def _purge_off(info: LabInfo, subject: str | None = None) -> Verdict:
    purge = _registry_conf(info)["storage"]["maintenance"]["uploadpurging"]
    return purge.get("enabled") is False, f"uploadpurging {purge}"


def _uploads(info: LabInfo) -> list[tuple[str, dt.datetime]]:
    root = Path(info["registry"]["storage_root"]) / "docker/registry/v2/repositories"
    out = []
    for started in root.glob("**/_uploads/*/startedat"):
        when = dt.datetime.fromisoformat(started.read_text().strip().replace("Z", "+00:00"))
        out.append((str(started.parent), when))
    return out


@verifier("stale-uploads-present")
def _stale(info: LabInfo, subject: str | None = None) -> Verdict:
    now = dt.datetime.now(dt.UTC)
    old = [p.split("/v2/repositories/")[1] for p, w in _uploads(info)
           if now - w > dt.timedelta(hours=168) and Path(p, "data").is_file()]
    return bool(old), f"incomplete uploads older than 168h: {old}"


@verifier("no-stale-uploads")
def _no_stale(info: LabInfo, subject: str | None = None) -> Verdict:
    now = dt.datetime.now(dt.UTC)
    old = [p for p, w in _uploads(info) if now - w > dt.timedelta(hours=168)]
    return not old, f"stale uploads: {old}"


def _nginx_timeouts(info: LabInfo) -> dict[str, list[list[str]]]:
    d = probes.nginx_directives(info["nginx"]["config"])
    return {k: d.get(k, []) for k in ("proxy_read_timeout", "proxy_send_timeout", "proxy_connect_timeout")}


@verifier("nginx-config-guide")
def _nginx_guide(info: LabInfo, subject: str | None = None) -> Verdict:
    d = probes.nginx_directives(info["nginx"]["config"])
    want = {"client_max_body_size": [["0"]], "proxy_buffering": [["on"]], "proxy_buffer_size": [["32k"]],
            "proxy_buffers": [["16", "64k"]], "proxy_busy_buffers_size": [["128k"]],
            "proxy_read_timeout": [["900s"]], "proxy_send_timeout": [["900s"]],
            "proxy_connect_timeout": [["60s"]], "proxy_max_temp_file_size": [["4096m"]]}
    bad = {k: d.get(k) for k, v in want.items() if d.get(k) != v}
    return not bad, f"differs from the guide: {bad}" if bad else "guide's body size, buffers, timeouts"


@verifier("nginx-short-timeouts")
def _nginx_short(info: LabInfo, subject: str | None = None) -> Verdict:
    t = _nginx_timeouts(info)
    ok = t["proxy_read_timeout"] == [["60s"]] and t["proxy_send_timeout"] == [["60s"]]
    return ok, f"{t}"


@verifier("content-populated")
def _content(info: LabInfo, subject: str | None = None) -> Verdict:
    if not info["content"].get("populated"):
        return False, "lab.content populate did not run (up --no-content)"
    r = _api(info, "/v2/_catalog", scope="registry:catalog:*")
    repos = json.loads(r.body).get("repositories", []) if r.status == 200 else []
    return bool(repos), f"_catalog -> {r.status}: {len(repos)} repositories"


@verifier("registry-empty")
def _registry_empty(info: LabInfo, subject: str | None = None) -> Verdict:
    r = _api(info, "/v2/_catalog")
    repos = json.loads(r.body).get("repositories") if r.status == 200 else None
    storage = Path(info["registry"]["storage_root"])
    written = sorted(str(p.relative_to(storage)) for p in storage.rglob("*"))[:5]
    return r.status == 200 and repos == [] and not info["content"].get("populated"), \
        f"_catalog -> {r.status} {repos}; storage root holds {written or 'nothing'}"


@verifier("content-verify")
def _content_verify(info: LabInfo, subject: str | None = None) -> Verdict:
    """The content engineer's independent re-check of every tag (`lab.content verify`)."""
    cp = info.run_in("registry", ["python3", "-m", "lab.content", "verify", str(info.state_file)],
                     env={"PYTHONPATH": str(info.raw.get("python_path", ""))}, timeout=300)
    last = (cp.stdout.strip().splitlines() or cp.stderr.strip().splitlines() or [""])[-1]
    return cp.returncode == 0, f"lab.content verify rc={cp.returncode}: {last[:300]}"


COMMON = ["topology", "hosts-resolve", "reach-443", "processes", "registry-health", "nginx-listen-loopback",
          "apache-listen", "http-redirects", "tls-rsa-and-ecdsa", "tls13-offered", "fstab-matches"]
GUIDE = ["tls-chain-valid", "tls-legacy-refused", "tls-only-guide-ciphers", "tmpfs-hardened", "tls-keys-0600",
         "firewall-rules", "registry-config-guide", "nginx-config-guide", "no-stale-uploads",
         "nosniff-present", "hsts-present", "ocsp-stapled"]
NGINX_ONLY = ["topology", "hosts-resolve", "reach-443", "processes", "registry-health", "nginx-listen-edge",
              "no-apache", "http-redirects", "tls-rsa-and-ecdsa", "tls13-offered", "fstab-matches"]
APACHE_ONLY = ["topology", "hosts-resolve", "reach-443", "processes", "registry-health", "apache-listen", "no-nginx",
               "apache-proxies-registry", "http-redirects", "tls-rsa-and-ecdsa", "tls13-offered"]
PROPERTIES: dict[str, list[str]] = {
    "hardened": [*COMMON, *GUIDE, "registry-listen-loopback", "registry-port-closed-outside",
                 "auth-basic-required", "htpasswd-bcrypt-private"],
    "token": [*COMMON, *GUIDE, "registry-listen-loopback", "registry-port-closed-outside",
              "auth-bearer-challenge", "token-config", "token-service-up", "token-scopes"],
    "firewall": [*COMMON, *GUIDE, "registry-listen-routable", "firewall-matrix", "auth-basic-required",
                 "htpasswd-bcrypt-private"],
    # weak: the properties that still hold, plus one verifier per seeded defect (defects/weak.yaml)
    "weak": [*COMMON],
    # issue 18: nginx alone, Apache alone (hardened and weak), and an empty registry
    "nginx": [*NGINX_ONLY, *GUIDE, "registry-listen-loopback", "registry-port-closed-outside",
              "auth-basic-required", "htpasswd-bcrypt-private", "nginx-recipe-header"],
    "nginx-weak": [*NGINX_ONLY, "tmpfs-hardened", "firewall-rules", "registry-config-guide", "nginx-config-guide",
                   "no-stale-uploads", "nosniff-present", "tls-chain-valid", "registry-listen-loopback",
                   "registry-port-closed-outside"],
    "apache": [*APACHE_ONLY, *[g for g in GUIDE if g not in ("tmpfs-hardened", "nginx-config-guide")],
               "registry-listen-loopback", "registry-port-closed-outside", "auth-basic-required",
               "htpasswd-bcrypt-private"],
    "apache-weak": [*APACHE_ONLY, "firewall-rules", "registry-config-guide", "no-stale-uploads", "nosniff-present",
                    "tls-chain-valid", "registry-listen-loopback", "registry-port-closed-outside"],
    "empty": [*COMMON, *GUIDE, "registry-listen-loopback", "registry-port-closed-outside",
              "auth-basic-required", "htpasswd-bcrypt-private", "registry-empty"],
}


def defects(info: LabInfo) -> list[dict[str, Any]]:
    """The variant's seeded defects (its defects file), or []."""
    path = info.raw.get("defects")
    if not path:
        return []
    doc = yaml.safe_load(Path(path).read_text())
    return list(doc.get("defects", []))


def run(info: LabInfo) -> Report:
    """Run every property of the variant, and every seeded defect's verifier."""
    report = Report(info.variant)
    plan: list[tuple[str, str | None, str | None]] = [(n, None, None) for n in PROPERTIES[info.variant]]
    if info["content"].get("populated"):
        plan.append(("content-populated", None, None))
        plan.append(("content-verify", None, None))
    for d in defects(info):
        v = d.get("verify", {})
        name = v.get("property") if isinstance(v, dict) else None
        if d.get("source") == "content" and not info["content"].get("populated"):
            report.results.append(Result(str(name), False, "content not populated (up --no-content)",
                                         str(d["id"]), skipped=True))
            continue
        subjects = d.get("subjects") or [None]
        plan += [(str(name), str(d["id"]), s) for s in subjects]
    for name, defect, subject in plan:
        fn = VERIFIERS.get(name)
        t0 = time.monotonic()
        if fn is None:
            report.results.append(Result(name, False, "no such verifier", defect))
            continue
        try:
            ok, detail = fn(info, subject)
        except Exception as exc:  # a verifier that cannot observe is a failure, with the reason
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        label = f"{name} {subject}" if subject else name
        report.results.append(Result(label, ok, detail, defect, round(time.monotonic() - t0, 2)))
    return report


# ---------------------------------------------------------------- content (registry API, scan dir)
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))


def _api(info: LabInfo, path: str, *extra: str, scope: str = "") -> probes.HttpResult:
    """GET (or HEAD with -I) a registry API path from the ci namespace, authenticated when needed
    (Basic, or a Bearer token for `scope` in the token variant)."""
    url = f"{info.url}{path}"
    if info["auth"]["scheme"] == "basic":
        with probes.netrc(info) as nf:
            return probes.curl(info, "ci", url, *extra, netrc_file=nf)
    if info["auth"]["scheme"] == "token":
        with probes.bearer_header(info, scope) as hf:
            return probes.curl(info, "ci", url, *extra, "-H", f"@{hf}")
    return probes.curl(info, "ci", url, *extra)


def _split(subject: str | None) -> tuple[str, str]:
    if not subject or ":" not in subject:
        raise ValueError(f"subject {subject!r} is not repo:tag")
    repo, tag = subject.rsplit(":", 1)
    return repo, tag


def _digest(info: LabInfo, repo: str, ref: str) -> str:
    r = _api(info, f"/v2/{repo}/manifests/{ref}", "-I", "-H", f"Accept: {MANIFEST_ACCEPT}")
    digest = r.headers.get("docker-content-digest", "")
    if r.status != 200 or not digest.startswith("sha256:"):
        raise ValueError(f"{repo}:{ref}: HEAD manifest -> {r.status}")
    return digest


def _tags(info: LabInfo, repo: str) -> list[str]:
    r = _api(info, f"/v2/{repo}/tags/list")
    return list(json.loads(r.body).get("tags") or []) if r.status == 200 else []


def _signature(info: LabInfo, repo: str, digest: str) -> tuple[bytes, bytes]:
    """(payload, DER signature) of the legacy `sha256-<hex>.sig` tag for digest."""
    import base64
    r = _api(info, f"/v2/{repo}/manifests/sha256-{digest.split(':', 1)[1]}.sig",
             "-H", "Accept: application/vnd.oci.image.manifest.v1+json")
    if r.status != 200:
        raise ValueError(f"no .sig manifest for {repo}@{digest} ({r.status})")
    layer = json.loads(r.body)["layers"][0]
    sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    blob = _api(info, f"/v2/{repo}/blobs/{layer['digest']}", "-L")
    return blob.body.encode(), sig


def _verifies(pub_path: str, payload: bytes, sig: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = serialization.load_pem_public_key(Path(pub_path).read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _payload_digest(payload: bytes) -> str:
    crit = {k.lower(): v for k, v in json.loads(payload)["critical"].items()}
    image = {k.lower(): v for k, v in crit["image"].items()}
    return str(image["docker-manifest-digest"])


@verifier("tag-unsigned")
def _unsigned(info: LabInfo, subject: str | None = None) -> Verdict:
    repo, tag = _split(subject)
    hexd = _digest(info, repo, tag).split(":", 1)[1]
    sigs = [t for t in _tags(info, repo) if t in (f"sha256-{hexd}.sig", f"sha256-{hexd}")]
    return not sigs, f"{subject}: signature tags {sigs}"


@verifier("signature-wrong-digest")
def _wrong_digest(info: LabInfo, subject: str | None = None) -> Verdict:
    repo, tag = _split(subject)
    digest = _digest(info, repo, tag)
    payload, sig = _signature(info, repo, digest)
    named = _payload_digest(payload)
    ok = _verifies(info["cosign"]["public_key"], payload, sig) and named != digest
    return ok, f"{subject}: valid under cosign.pub, payload names {named[:19]}, tag is {digest[:19]}"


@verifier("signature-untrusted-key")
def _untrusted(info: LabInfo, subject: str | None = None) -> Verdict:
    repo, tag = _split(subject)
    digest = _digest(info, repo, tag)
    payload, sig = _signature(info, repo, digest)
    trusted = _verifies(info["cosign"]["public_key"], payload, sig)
    untrusted = _verifies(info["cosign"]["untrusted_public_key"], payload, sig)
    return untrusted and not trusted, f"{subject}: verifies with untrusted key {untrusted}, trusted {trusted}"


def _scan_file(info: LabInfo, subject: str | None) -> Path:
    repo, tag = _split(subject)
    return Path(info["scan_dir"]) / f"{repo.replace('/', '_')}_{tag}.json"


@verifier("scan-missing")
def _scan_missing(info: LabInfo, subject: str | None = None) -> Verdict:
    repo, tag = _split(subject)
    present = tag in _tags(info, repo)
    f = _scan_file(info, subject)
    return present and not f.exists(), f"{subject}: tag present {present}, {f.name} exists {f.exists()}"


def _scan(info: LabInfo, subject: str | None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_scan_file(info, subject).read_text())
    return data


@verifier("scan-stale")
def _scan_stale(info: LabInfo, subject: str | None = None) -> Verdict:
    created = dt.datetime.fromisoformat(_scan(info, subject)["CreatedAt"].replace("Z", "+00:00"))
    age = dt.datetime.now(dt.UTC) - created
    return age > dt.timedelta(hours=48), f"{subject}: CreatedAt {created.isoformat()} ({age.days} days old)"


@verifier("scan-digest-mismatch")
def _scan_mismatch(info: LabInfo, subject: str | None = None) -> Verdict:
    repo, tag = _split(subject)
    digest = _digest(info, repo, tag)
    rds = _scan(info, subject).get("Metadata", {}).get("RepoDigests") or []
    named = [rd.rsplit("@", 1)[-1] for rd in rds]
    short = [n[:19] for n in named]
    return bool(named) and digest not in named, f"{subject}: tag {digest[:19]}, scan names {short}"


@verifier("scan-critical")
def _scan_critical(info: LabInfo, subject: str | None = None) -> Verdict:
    vulns = [v for r in _scan(info, subject).get("Results") or [] for v in r.get("Vulnerabilities") or []]
    crit = [v.get("VulnerabilityID") for v in vulns if v.get("Severity") == "CRITICAL"]
    return bool(crit), f"{subject}: CRITICAL {crit}"


# the container variants' properties (registers their verifiers; needs this module's names)
from . import selftest_containers  # noqa: E402

PROPERTIES.update(selftest_containers.PROPERTIES)
