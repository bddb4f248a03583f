"""Fuzz targets: one per parser regaudit runs on untrusted input, with its seeds and its contract.

Each target takes raw bytes and drives the real parser (and, where the parse feeds a judgement,
the checks that judge it). The contract, enforced here for every input:

- the parser returns a result, or raises one of the target's documented exceptions (`allowed`),
  which the CLI turns into an `error` result, a `parse_error` fact or exit 2 (UsageError);
- no check crashes ("check crashed: ..." is a traceback in disguise);
- where the input did not parse, no check passes on it;
- anything else escaping is a crash: the fuzzer records the input, and the input becomes a
  regression test (tests/fuzz/regressions/<target>/).

Hangs and memory are bounded by the runner (tests/fuzz/run.py: libFuzzer's -timeout and
-rss_limit_mb). Targets import parsers by their module path; the seeds are the real files the unit
tests use (tests/fixtures, including copies of upstream cosign/Trivy test data) plus a few
generated ones (tests/fuzz/seeds).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "fixtures"
SEEDS = Path(__file__).resolve().parent / "seeds"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
REPO = TESTS.parent
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
SCRATCH = Path(tempfile.mkdtemp(prefix="regaudit-fuzz-"))


class ContractViolation(AssertionError):
    """The input broke the target's contract (a crashed check, a pass on unparsed input ...)."""


@dataclass
class Target:
    name: str
    fn: Callable[[bytes], None]
    seeds: Callable[[], list[Path]]
    allowed: tuple[type[BaseException], ...] = ()
    doc: str = ""
    extra_seeds: Callable[[], Iterator[bytes]] = field(default=lambda: iter(()))

    def __call__(self, data: bytes) -> None:
        with contextlib.suppress(self.allowed):
            self.fn(data)

    def seed_inputs(self) -> list[bytes]:
        out = [p.read_bytes() for p in self.seeds() if p.is_file()]
        out += list(self.extra_seeds())
        seed_dir = SEEDS / self.name
        if seed_dir.is_dir():
            out += [p.read_bytes() for p in sorted(seed_dir.iterdir()) if p.is_file()]
        return out

    def regressions(self) -> list[Path]:
        folder = REGRESSIONS / self.name
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


TARGETS: dict[str, Target] = {}


def target(name: str, seeds: Callable[[], list[Path]], allowed: tuple[type[BaseException], ...] = (),
           extra: Callable[[], Iterator[bytes]] | None = None) -> Callable[[Callable[[bytes], None]], Callable]:
    def register(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        TARGETS[name] = Target(name, fn, seeds, allowed, (fn.__doc__ or "").strip(), extra or (lambda: iter(())))
        return fn
    return register


def glob(*patterns: str) -> Callable[[], list[Path]]:
    return lambda: sorted(p for pattern in patterns for p in REPO.glob(pattern))


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ---- judging helpers --------------------------------------------------------------------------------


@functools.cache
def _checks() -> dict[str, Any]:
    from auditor.plugins import load_checks

    return dict(load_checks())


@functools.cache
def _profile() -> Any:
    from auditor.profile import load_profile

    return load_profile("seed-hardened")


def judge(records: dict[str, Any], ids: Callable[[str], bool], *, unparsed: bool = False,
          crash_is_error: bool = False) -> list[Any]:
    """Judge the checks whose id `ids` accepts on `records` (probe name -> facts), enforcing the
    contract: no check crashes (unless `crash_is_error`: the runner's `error` result with the
    exception as its reason is then accepted), and nothing passes when `unparsed`."""
    from auditor.checkapi import ProbeRecord
    from auditor.model import Status, Vantage
    from auditor.runner import judge_all

    recs = {name: ProbeRecord(name, "ok", facts) for name, facts in records.items()}
    items = [c for cid, c in _checks().items() if ids(cid)]
    results = judge_all(items, recs, _profile(), frozenset(Vantage), NOW)
    for result in results:
        message = str(getattr(result, "message", ""))
        if "check crashed" in message and not crash_is_error:
            raise ContractViolation(f"{result.check_id if hasattr(result, 'check_id') else result}: {message}")
        if unparsed and result.status == Status.PASS:
            raise ContractViolation(f"{result} passed on input that did not parse")
    return results


def _scratch_file(name: str, data: bytes) -> str:
    path = SCRATCH / name
    path.write_bytes(data)
    return str(path)


# ---- registry config -------------------------------------------------------------------------------


@target("registry_config", glob("tests/fixtures/registry/*.yml", "tests/fixtures/lab-*/*.yml"), extra=lambda: iter([
    b"version: 0.1\nstorage: {filesystem: {rootdirectory: /var/lib/registry}}\nauth:\n  token:\n"
    b"    realm: https://auth.example.com/token\n    service: registry\n    issuer: auth\n"
    b"    rootcertbundle: /etc/ssl/token.pem\nnotifications:\n  endpoints:\n    - name: audit\n"
    b"      url: https://events.example.com:8443/hook\n      headers: {Authorization: [Bearer x]}\n"
    b"      timeout: 1s\n      threshold: 5\n      backoff: 10s\nhttp: {addr: 127.0.0.1:5000, host: https://r.example.com}\n"]))
def registry_config(data: bytes) -> None:
    """The registry config file: bounded read and YAML load, then every registry.* check (the
    effective-defaults merge included) on the facts."""
    from auditor.probes.registry_config import read_registry_config

    facts = read_registry_config(_scratch_file("config.yml", data), "explicit")
    judge({"config.registry": facts}, lambda cid: cid.startswith("registry."), unparsed="parse_error" in facts)


# ---- proxies -----------------------------------------------------------------------------------------


def _nginx_dump(body: str) -> str:
    return f"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n# configuration file " \
           f"/etc/nginx/nginx.conf:\n{body}\n"


@target("nginx", glob("tests/fixtures/nginx/**/*.conf", "tests/fixtures/nginx/*/nginx.conf"),
        extra=lambda: iter([_nginx_dump("http { server { listen 443 ssl; location /v2/ { proxy_pass "
                                         "http://127.0.0.1:5000; } } }").encode()]))
def nginx(data: bytes) -> None:
    """nginx -T output (crossplane per dumped file, includes inlined), then the registry facts."""
    from auditor.host import nginx as ngx

    raw = text(data)
    dump = raw if raw.startswith("nginx:") else _nginx_dump(raw)
    tree = ngx.load_from_dump(dump, "/etc/nginx/nginx.conf")
    build = ngx.Build.from_version_output("nginx version: nginx/1.22.1\nconfigure arguments: --prefix=/usr/share/nginx")
    ngx.registry_facts(tree, {"addresses": ["127.0.0.1:5000"]}, build)


@target("apache", glob("tests/fixtures/apache/**/*.conf", "tests/fixtures/apache/*/apache2.conf"))
def apache(data: bytes) -> None:
    """Apache configuration text (logical lines, sections, Define/IfDefine), then the vhost facts."""
    from auditor.host import apache as ap

    try:
        config = ap.load_text(text(data), "/etc/apache2/apache2.conf", "/nonexistent-server-root")
    except ap.ParseError:
        return
    ap.registry_facts(config, "registry.example.test", 443)


# ---- firewall ----------------------------------------------------------------------------------------


def _firewall_facts(rulesets: dict[str, Any]) -> dict[str, Any]:
    return {
        "registry_port": 5000, "port_source": "config.registry http.addr", "listen": ["0.0.0.0", "::"],
        "containerised": False, "published_ports": [],
        "interfaces": {"lo": ["127.0.0.1", "::1"], "eth0": ["10.0.0.10", "fd00::10"]},
        "routes": [{"family": 4, "dst": "default", "dev": "eth0"}, {"family": 6, "dst": "default", "dev": "eth0"}],
        "rulesets": rulesets,
    }


@functools.cache
def _empty_rulesets() -> dict[str, Any]:
    folder = FIXTURES / "firewall"
    return {"iptables": {"tool": "iptables-save", "text": (folder / "empty.iptables").read_text(), "variant": "nf_tables"},
            "ip6tables": {"tool": "ip6tables-save", "text": (folder / "empty.ip6tables").read_text(),
                          "variant": "nf_tables"},
            "nft": {"json": json.loads((folder / "empty.nft.json").read_text())}}


def _judge_firewall(rulesets: dict[str, Any]) -> None:
    results = judge({"host.firewall": _firewall_facts({**_empty_rulesets(), **rulesets})},
                    lambda cid: cid.startswith("firewall."))
    if not results:
        raise ContractViolation("no firewall result")


@target("iptables_save", glob("tests/fixtures/firewall/*.iptables", "tests/fixtures/firewall/*.ip6tables"))
def iptables_save(data: bytes) -> None:
    """iptables-save text through the parser and the kernel-order evaluator (firewall.* checks)."""
    _judge_firewall({"iptables": {"tool": "iptables-save", "text": text(data), "variant": "nf_tables"}})


@target("nft_json", glob("tests/fixtures/firewall/*.nft.json"))
def nft_json(data: bytes) -> None:
    """`nft -j list ruleset` JSON (bounded load) through the parser and the evaluator."""
    from auditor import bounded

    try:
        doc = bounded.load_json(data, "nft -j output")
    except bounded.InputError:
        _judge_firewall({"nft": {"error": "nft printed no usable JSON"}})
        return
    _judge_firewall({"nft": {"json": doc}})


# ---- scans ---------------------------------------------------------------------------------------------


@target("trivy_report", glob("tests/fixtures/upstream/trivy/*.golden"))
def trivy_report(data: bytes) -> None:
    """A Trivy JSON report file in --scan-dir, read as the scans probe reads it."""
    from auditor.content.scandir import read_scan_dir

    folder = SCRATCH / "scans"
    folder.mkdir(exist_ok=True)
    (folder / "report.json").write_bytes(data)
    facts = read_scan_dir(str(folder))
    if set(facts["reports"]) != {"report.json"}:
        raise ContractViolation(f"report not accounted for: {facts['reports']}")


@target("trivyignore", lambda: [], extra=lambda: iter([b"CVE-2023-0001\n# c\nCVE-2024-1 exp:2026-01-01\n"]))
def trivyignore(data: bytes) -> None:
    """`.trivyignore` lines (ids, exp: dates, comments)."""
    from auditor.judge.scans import parse_trivyignore

    parse_trivyignore(text(data))


@target("trivyignore_yaml", lambda: [], extra=lambda: iter([
    b"vulnerabilities:\n  - id: CVE-2023-0001\n    paths: [usr/lib/*]\n    expired_at: 2027-01-01\n"
    b"    statement: not reachable\n  - id: CVE-2024-1\n    purls: [pkg:apk/alpine/musl]\n"]))
def trivyignore_yaml(data: bytes) -> None:
    """`.trivyignore.yaml` (bounded YAML load)."""
    import yaml

    from auditor import bounded
    from auditor.judge.scans import parse_trivyignore_yaml

    # read_scan_dir turns these exceptions into an `errors` entry naming the file
    with contextlib.suppress(ValueError, yaml.YAMLError, bounded.InputError):
        parse_trivyignore_yaml(text(data))


# ---- content -------------------------------------------------------------------------------------------


def _manifest_seeds() -> Iterator[bytes]:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "a" * 64,
             "size": 10}
    yield json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {**layer, "mediaType": "application/vnd.oci.image.config.v1+json"},
                      "layers": [layer], "annotations": {"org.opencontainers.image.created": "2026-01-01"}}).encode()
    yield json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [{**layer, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                     "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    yield json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                      "config": layer, "layers": [layer],
                      "subject": {**layer, "mediaType": "application/vnd.oci.image.manifest.v1+json"}}).encode()


@target("manifest", lambda: [], allowed=(ValueError,), extra=_manifest_seeds)
def manifest(data: bytes) -> None:
    """Image manifests and indexes (OCI and Docker v2; schema 1 refused); ValueError is the walker's
    documented refusal (the tag's result becomes `error`)."""
    from auditor.judge.manifests import parse_manifest

    parse_manifest(data, "application/vnd.oci.image.manifest.v1+json")


def _cosign_seeds() -> Iterator[bytes]:
    yield json.dumps({"critical": {"identity": {"docker-reference": "registry.test/app"},
                                   "image": {"docker-manifest-digest": "sha256:" + "b" * 64},
                                   "type": "cosign container image signature"}, "optional": None}).encode()


@target("cosign_payload", lambda: [], extra=_cosign_seeds)
def cosign_payload(data: bytes) -> None:
    """A simple-signing payload (the .sig layer's blob)."""
    from auditor.judge.cosign import payload_facts, reference_matches

    _digest, reference, error = payload_facts(data)
    if not error and reference:
        reference_matches(reference, "app", ["registry.test"])


def _dsse_seeds() -> Iterator[bytes]:
    statement = (FIXTURES / "upstream" / "cosign" / "vuln-predicate.json").read_bytes()
    yield json.dumps({"payloadType": "application/vnd.in-toto+json",
                      "payload": base64.b64encode(statement).decode(), "signatures": [{"sig": "AAAA"}]}).encode()


@target("dsse_envelope", glob("tests/fixtures/upstream/cosign/vuln-predicate.json"), extra=_dsse_seeds)
def dsse_envelope(data: bytes) -> None:
    """A DSSE envelope (the .att layer) with its in-toto statement, and a bare statement."""
    from auditor.content.attestations import attestation_facts
    from auditor.judge.cosign import statement_digests

    attestation_facts(text(data), "sha256-x.att", "dsse")
    statement_digests(data)


@functools.cache
def _trusted_keys() -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from auditor.judge.cosign import TrustedKeys

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return TrustedKeys.from_pems([("fuzz", pem.decode())])


@target("sigstore_bundle", glob("tests/fixtures/upstream/cosign/*.sigstore.json"))
def sigstore_bundle(data: bytes) -> None:
    """A sigstore bundle: parsed, verified against a trusted key (never passes: the key is not
    the signer), and its vuln attestation summarised."""
    from auditor.content.attestations import bundle_attestation_facts
    from auditor.judge.cosign import VALID, parse_bundle, verify_bundle_keyed

    bundle, _error = parse_bundle(text(data))
    bundle_attestation_facts(text(data))
    if bundle is None:
        return
    keys = _trusted_keys()
    verdict = verify_bundle_keyed(bundle, "sha256:" + "c" * 64, keys)
    if verdict.status == VALID:
        raise ContractViolation(f"a fuzzed bundle verified: {verdict}")


# ---- TLS ---------------------------------------------------------------------------------------------


def _tls_seeds() -> Iterator[bytes]:
    import sys

    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from tlspeer.peer import certificate_message, handshake, record, server_hello

    cert = b""
    pem = next(iter(sorted((FIXTURES).glob("**/*.crt"))), None)
    if pem is not None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        try:
            cert = x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)
        except ValueError:
            cert = b""
    yield record(22, 0x0303, server_hello(0x0303, 0xC02F) + certificate_message([cert] if cert else [])
                 + handshake(14, b""))
    yield record(22, 0x0303, server_hello(0x0303, 0x1301, tls13=True))
    yield record(21, 0x0303, b"\x02\x28")


@functools.cache
def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


@target("tls_server_answer", lambda: [], extra=_tls_seeds)
def tls_server_answer(data: bytes) -> None:
    """A server's answer to a ClientHello: records, alerts, ServerHello, Certificate (and the chain
    facts of any certificates), as the handshake reader sees it on the wire; also as SSLv2."""
    from auditor.judge.certs import chain_facts
    from auditor.tlsprobe import handshake as hs

    async def read(reader_fn: Callable[..., Any], *args: Any) -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await reader_fn(reader, *args)

    loop = _loop()
    result = loop.run_until_complete(read(hs._read_answer, "TLSv1.2", True, 2**16))
    loop.run_until_complete(read(hs._read_sslv2, 2**16)) if data else None
    if result.certificates:
        chain_facts(result.certificates, "registry.test", [], "none", NOW, "fuzz")


# ---- HTTP headers -------------------------------------------------------------------------------------


@target("www_authenticate", lambda: [], extra=lambda: iter([
    b'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:app:pull"',
    b'Basic realm="Registry Realm", Bearer realm="https://a/t",error="invalid_token"',
    b'Bearer realm=unquoted, charset="UTF-8"']))
def www_authenticate(data: bytes) -> None:
    """WWW-Authenticate challenges, by both parsers (the auth probes' and the content walker's)."""
    from auditor.content.auth import parse_challenge
    from auditor.regauth import parse_www_authenticate

    value = text(data)
    parse_www_authenticate(value.split("\n"))
    parse_challenge(value)


@target("link_header", lambda: [], extra=lambda: iter([
    b'</v2/_catalog?last=app&n=100>; rel="next"', b"</v2/app/tags/list?n=50&last=v1>; rel=next, <x>; rel=prev"]))
def link_header(data: bytes) -> None:
    """Link headers of paginated catalog/tags answers; the next URL must stay on the registry."""
    from auditor.content.walker import _next_link

    _next_link(text(data).split("\n"))


@target("notification_envelope", lambda: [], extra=lambda: iter([json.dumps({"events": [
    {"id": "e1", "timestamp": "2026-01-01T00:00:00Z", "action": "push",
     "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "app/web",
                "digest": "sha256:" + "d" * 64, "tag": "v1"}, "actor": {"name": "ci"}, "source": {"addr": "r:5000"}},
    {"id": "e2", "action": "delete", "target": {"repository": "app/web", "tag": "sha256-" + "d" * 64 + ".sig",
                                                "digest": "sha256:" + "d" * 64}}]}).encode()]))
def notification_envelope(data: bytes) -> None:
    """A registry notification body (`regaudit watch`): EnvelopeError is its documented refusal
    (answered 400), every parsed event is classified."""
    from auditor.watch.events import EnvelopeError, classify, parse_envelope

    try:
        events = parse_envelope(data)
    except EnvelopeError:
        return
    for event in events:
        classify(event)


# ---- user files ----------------------------------------------------------------------------------------


def _usage_error() -> tuple[type[BaseException], ...]:
    from auditor.errors import UsageError

    return (UsageError,)


@target("docker_config", lambda: [], extra=lambda: iter([
    json.dumps({"auths": {"registry.test": {"auth": base64.b64encode(b"u:p").decode()}}}).encode(),
    json.dumps({"auths": {"https://registry.test/v1/": {"username": "u", "password": "p"}},
                "credHelpers": {"other.test": "none"}}).encode()]))
def docker_config(data: bytes) -> None:
    """Docker's config.json (auths, credsStore/credHelpers names are not executed here)."""
    from auditor.credentials import _from_docker_config
    from auditor.errors import UsageError

    try:
        doc = json.loads(data)
        if isinstance(doc, dict) and (doc.get("credsStore") or doc.get("credHelpers")):
            return  # a helper would be executed: out of scope for an in-process fuzzer
    except (ValueError, RecursionError):
        pass
    with contextlib.suppress(UsageError):
        _from_docker_config("registry.test", _scratch_file("config.json", data), {"HOME": str(SCRATCH)})


@target("profile", glob("profiles/*.yaml", "tests/*.yaml", "tests/fixtures/**/profile*.yaml"))
def profile(data: bytes) -> None:
    """A profile file (YAML, schema, waivers, extends): a result or UsageError (exit 2)."""
    from auditor.errors import UsageError
    from auditor.profile import load_profile

    with contextlib.suppress(UsageError):
        load_profile(_scratch_file("profile.yaml", data))


@target("evidence", glob("tests/fixtures/host/*-evidence.json", "tests/fixtures/lab-*/*.json"))
def evidence(data: bytes) -> None:
    """An evidence file for `evaluate`: loaded (UsageError = exit 2) and judged by every check."""
    from auditor.errors import UsageError
    from auditor.evidence import EvidenceFile

    try:
        loaded = EvidenceFile.load(Path(_scratch_file("evidence.json", data)))
    except UsageError:
        return
    # Recorded facts are judged as recorded: a record whose shape no probe produces (hand-edited,
    # corrupted) may make its checks `error` ("check crashed: ..."), never the whole evaluate.
    judge({name: rec.value for name, rec in loaded.records.items() if rec.state == "ok"}, lambda cid: True,
          crash_is_error=True)


@functools.cache
def _signing_key() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"regaudit fuzz key").digest())  # reproducible
    return private, private.public_key()


def _envelope_seeds() -> Iterator[bytes]:
    from auditor.signing import sign

    private, _ = _signing_key()
    yield json.dumps(sign(b'{"format": "regaudit-report/1"}', private)).encode()


@target("signed_report", lambda: [], extra=_envelope_seeds)
def signed_report(data: bytes) -> None:
    """A signed-report envelope (`verify-report`): bounded JSON, then verification; a fuzzed
    envelope never verifies."""
    from auditor import bounded
    from auditor.signing import verify

    try:
        envelope = bounded.load_json(data, "signature file")
    except bounded.InputError:
        return
    _, public = _signing_key()
    report = b'{"format": "regaudit-report/1"}'
    valid, _reason = verify(report, envelope if isinstance(envelope, dict) else {}, public)
    # base64 text is malleable (non-canonical padding bits decode to the same bytes): compare bytes
    if valid and base64.b64decode(str(envelope.get("signature"))) != base64.b64decode(_genuine_signature()):
        raise ContractViolation("an envelope with another signature verified")


@functools.cache
def _genuine_signature() -> str:
    from auditor.signing import sign

    return str(sign(b'{"format": "regaudit-report/1"}', _signing_key()[0])["signature"])


def all_inputs(name: str) -> list[bytes]:
    """Seeds and committed regression inputs of a target."""
    t = TARGETS[name]
    return t.seed_inputs() + [p.read_bytes() for p in t.regressions()]


os.environ.setdefault("REGAUDIT_STATE_DIR", str(SCRATCH / "state"))
