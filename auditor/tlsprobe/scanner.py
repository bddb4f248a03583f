"""A whole TLS scan of one host: every address it resolves to, every protocol version, every
accepted cipher suite, the server's preference and the certificate chains.

Contract: `scan` returns JSON-serialisable facts and never raises for anything the network or
the server does: failures are "error: reason" strings in the result. Handshakes run concurrently
under a semaphore, each with its own timeout, and no handshake starts after the deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from auditor.judge import certs as certs_mod
from auditor.judge.suites import ALL_VERSIONS, SUITES, describe, suites_for
from auditor.tlsprobe import handshake as hs
from auditor.tlsprobe.enumerate import enumerate_chunked, server_preference
from auditor.tlsprobe.ocsp import responder_urls, stapling_facts
from auditor.tlsprobe.records import SSLV2_CIPHERS, is_dns_name
from auditor.tlsprobe.truststore import load_trust_store

CERT_AUTH_TYPES = ("ECDSA", "RSA", "DSS")


@dataclass
class ScanOptions:
    """Knobs of a scan; `deadline` is seconds from the start for the whole scan."""

    timeout: float = 5.0
    deadline: float = 60.0
    concurrency: int = 16
    chunks: int = 4
    versions: Sequence[str] = ALL_VERSIONS
    ca_bundle: str | None = None
    now: datetime | None = None
    certificates: bool = True


@dataclass
class _Scan:
    host: str
    port: int
    server_name: str | None
    options: ScanOptions
    started: float = field(default_factory=time.monotonic)
    counter: hs.Counter = field(default_factory=hs.Counter)
    semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))

    def remaining(self) -> float:
        return self.options.deadline - (time.monotonic() - self.started)

    def budget(self) -> float | None:
        """Timeout for the next handshake, or None when the deadline has passed."""
        left = self.remaining()
        return None if left <= 0.05 else min(self.options.timeout, left)

    async def hello(self, address: str, version: str, offer: Sequence[int],
                    want_certificate: bool = False, status_request: bool = False) -> hs.HelloResult:
        async with self.semaphore:
            timeout = self.budget()
            if timeout is None:
                return hs.HelloResult(hs.ERROR, "scan deadline reached")
            if version == "SSLv2":
                return await hs.attempt_sslv2(address, self.port, timeout=timeout,
                                              counter=self.counter)
            return await hs.attempt(address, self.port, version, offer, self.server_name,
                                    timeout=timeout, want_certificate=want_certificate,
                                    counter=self.counter, status_request=status_request)


def _family(address: str) -> str:
    return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6, in resolver order); a literal is itself.

    Raises OSError (socket.gaierror) or TimeoutError when resolution fails.
    """
    literal = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _protocol_value(result: hs.HelloResult, speaks_tls: bool) -> bool | str:
    if result.status == hs.ACCEPTED:
        return True
    if result.status == hs.REFUSED:
        return False
    if result.status == hs.CLOSED:
        # a close without an alert is a refusal from a server that speaks TLS at all
        return False if speaks_tls else f"error: {result.reason}; no version was accepted"
    return f"error: {result.reason}"


def _peer_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The chain the server sent (leaf first). Python 3.11 exposes it only on the private
    `_sslobj.get_unverified_chain()` (public from 3.13); without it, the leaf alone."""
    inner = getattr(ssl_object, "_sslobj", None)
    getter = getattr(ssl_object, "get_unverified_chain", None) or getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                    for c in chain]
            if ders:
                return ders
        except (AttributeError, ValueError, ssl.SSLError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


async def _fetch_chain_with_ssl(scan: _Scan, address: str) -> list[bytes]:
    """The presented chain through Python's ssl (used when no TLS <= 1.2 flight is readable,
    i.e. TLS 1.3 only, where the Certificate message is encrypted)."""
    timeout = scan.budget()
    if timeout is None:
        return []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sni = scan.server_name if scan.server_name and is_dns_name(scan.server_name) else None
    writer = None
    async with scan.semaphore:
        scan.counter.connections += 1
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(
                    address, scan.port, ssl=ctx, server_hostname=sni or "",
                    ssl_handshake_timeout=timeout)
                ssl_object = writer.get_extra_info("ssl_object")
                return _peer_chain(ssl_object) if ssl_object is not None else []
        except (OSError, TimeoutError, ssl.SSLError):
            return []
        finally:
            if writer is not None:
                writer.transport.abort()


async def _certificates(scan: _Scan, address: str, suites_by_version: dict[str, list[int]],
                        tls13: bool) -> tuple[list[dict[str, Any]], str | None]:
    """Chains per authentication type from a TLS <= 1.2 flight; the leaf via ssl otherwise."""
    now = scan.options.now or datetime.now(UTC)
    try:
        store, store_source = load_trust_store(scan.options.ca_bundle)
    except (OSError, ValueError) as exc:
        store, store_source = [], f"error: {exc}"
    chains: list[dict[str, Any]] = []
    errors: list[str] = []
    for version in ("TLSv1.2", "TLSv1.1", "TLSv1.0", "SSLv3"):
        accepted = suites_by_version.get(version)
        if not accepted:
            continue
        for auth in CERT_AUTH_TYPES:
            offer = [c for c in accepted if c in SUITES and SUITES[c].auth == auth]
            if not offer:
                continue
            result = await scan.hello(address, version, offer, want_certificate=True, status_request=True)
            if result.certificates:
                facts = certs_mod.chain_facts(result.certificates, scan.server_name, store,
                                              store_source, now, f"{version} Certificate message")
                facts["auth"] = auth
                facts["ocsp_stapling"] = stapling_facts(version, result.status_request_echoed,
                                                        result.ocsp_response, result.ocsp_error,
                                                        result.certificates[0])
                chains.append(facts)
            else:
                errors.append(f"{version} {auth}: no Certificate message ({result.reason})")
        break
    if not chains and tls13:
        ders = await _fetch_chain_with_ssl(scan, address)
        if ders:
            facts = certs_mod.chain_facts(ders, scan.server_name, store, store_source, now,
                                          "TLS 1.3 through Python's ssl")
            facts["ocsp_stapling"] = {"asked_in": None, "responder_urls": responder_urls(ders[0]),
                                      "undecided": "the server speaks TLS 1.3 only, where the stapled response "
                                      "travels inside the encrypted Certificate message, which this prober does "
                                      "not decrypt"}
            chains.append(facts)
        else:
            errors.append("TLS 1.3: the certificate could not be read through Python's ssl")
    return chains, "; ".join(errors) if errors and not chains else None


async def scan_address(scan: _Scan, address: str) -> dict[str, Any]:
    """All facts for one address."""
    versions = list(scan.options.versions)
    first = await asyncio.gather(*(scan.hello(address, v, suites_for(v)) for v in versions))
    answers = dict(zip(versions, first, strict=True))
    speaks_tls = any(r.status in (hs.ACCEPTED, hs.REFUSED) for r in first)
    protocols = {v: _protocol_value(r, speaks_tls) for v, r in answers.items()}
    out: dict[str, Any] = {
        "address": address,
        "family": _family(address),
        "protocols": protocols,
        "protocol_answers": {v: r.reason for v, r in answers.items()},
        "cipher_suites": {},
        "enumeration_errors": {},
        "server_preference": {},
        "certificates": [],
        "certificate_error": None,
    }
    unreachable = all(r.status == hs.ERROR and r.reason.startswith("connect:") for r in first)
    out["reachable"] = not unreachable
    if unreachable:
        out["error"] = f"error: unreachable: {first[0].reason}"
        return out
    accepted = [v for v in versions if protocols[v] is True]
    if "SSLv2" in accepted:
        out["cipher_suites"]["SSLv2"] = [
            {"code": f"0x{s:06X}", "name": SSLV2_CIPHERS.get(s, f"SSL2_UNKNOWN_0x{s:06X}"),
             "flags": ["SSLv2"]} for s in answers["SSLv2"].sslv2_specs]

    async def walk(version: str) -> tuple[str, list[int], str | None, dict[str, object]]:
        async def try_hello(offer: Sequence[int]) -> hs.HelloResult:
            return await scan.hello(address, version, offer)
        chunks = 1 if version == "TLSv1.3" else scan.options.chunks
        found = await enumerate_chunked(try_hello, suites_for(version), chunks,
                                        first=answers[version])
        preference = await server_preference(try_hello, found.accepted)
        return version, found.accepted, found.error, preference

    walks = await asyncio.gather(*(walk(v) for v in accepted if v != "SSLv2"))
    suites_by_version: dict[str, list[int]] = {}
    for version, codes, error, preference in walks:
        suites_by_version[version] = codes
        out["cipher_suites"][version] = [describe(c) for c in codes]
        if error:
            out["enumeration_errors"][version] = f"error: {error}"
        out["server_preference"][version] = preference
    if scan.options.certificates:
        chains, error = await _certificates(scan, address, suites_by_version,
                                            "TLSv1.3" in accepted)
        out["certificates"] = chains
        out["certificate_error"] = error
    return out


async def scan(host: str, port: int = 443, *, server_name: str | None = None,
               addresses: Sequence[str] | None = None,
               options: ScanOptions | None = None) -> dict[str, Any]:
    """Scan `host`:`port` (all its addresses, or the given ones); `server_name` defaults to host
    and is sent as SNI when it is a DNS name."""
    opts = options or ScanOptions()
    state = _Scan(host, port, server_name if server_name is not None else host.strip("[]"), opts)
    state.semaphore = asyncio.Semaphore(max(1, opts.concurrency))
    result: dict[str, Any] = {
        "host": host,
        "port": port,
        "server_name": state.server_name,
        "scanned_at": (opts.now or datetime.now(UTC)).isoformat(),
        "addresses": [],
        "errors": [],
        "suite_table": {"suites": len(SUITES), "iana": sum(s.iana for s in SUITES.values())},
    }
    try:
        targets = list(addresses) if addresses else await resolve(host, port, opts.timeout)
    except (OSError, TimeoutError) as exc:
        result["errors"].append(f"error: cannot resolve {host}: {exc}")
        targets = []
    partial: dict[str, dict[str, Any]] = {}

    async def one(address: str) -> None:
        try:
            partial[address] = await scan_address(state, address)
        except Exception as exc:  # a prober bug is reported for its address, never raised
            partial[address] = {"address": address, "family": _family(address),
                                "error": f"error: internal error: {type(exc).__name__}: {exc}"}

    try:
        async with asyncio.timeout(max(0.1, state.remaining()) + 1.0):
            await asyncio.gather(*(one(a) for a in targets))
    except TimeoutError:
        result["errors"].append(f"error: scan deadline of {opts.deadline:.1f}s reached")
    for address in targets:
        if address in partial:
            result["addresses"].append(partial[address])
        else:
            result["addresses"].append({"address": address, "family": _family(address),
                                        "error": "error: not scanned before the deadline"})
    result["handshakes"] = state.counter.connections
    result["elapsed_s"] = round(time.monotonic() - state.started, 3)
    return result
