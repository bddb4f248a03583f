"""Generator `apache-vhost`: the guide's TLS vhost as `<VirtualHost *:443>`, spliced in place.

The address form follows docs/guide-notes.md#apache-vhost-address.

The registry's `<VirtualHost>` block is re-rendered from a template with the site's ServerName,
aliases, certificates, upstream and AuthUserFile; directives and sections the guide does not
govern are kept verbatim; the rest of the file is left byte for byte.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .model import FileChange, Plan, TextRemedy
from .render import render
from .site import Site, hold_chains, read_live, split_where

NAME = "apache-vhost"
CONFIG_CHECKS = ("proxy.apache-tls", "proxy.apache-proxy", "proxy.apache-auth")
WIRE_CHECKS = ("tls.protocols", "tls.ciphers", "tls.tls13", "http.hsts", "tls.ocsp-stapling")
MANAGED = {"sslengine", "sslprotocol", "sslciphersuite", "sslcertificatefile", "sslcertificatekeyfile",
           "proxytimeout", "limitrequestbody", "servername", "serveralias", "sslusestapling"}
HSTS_MAX_AGE = 63072000  # two years (Mozilla's server-side TLS guidelines); more when the profile asks
STAPLING_CACHE = "SSLStaplingCache shmcb:ssl_stapling(128000)"
GUIDE_PROTOCOLS = "-all +TLSv1.2 +TLSv1.3"
OPENSSL_NAMES = {
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
SECTION_OPEN = re.compile(r"^\s*<\s*([A-Za-z]+)([^>]*)>\s*$")
SECTION_CLOSE = re.compile(r"^\s*</\s*([A-Za-z]+)\s*>\s*$")


@dataclass
class Vhost:
    """The top level of one `<VirtualHost>` block: directives (name, args, raw) and nested sections."""

    start: int
    end: int
    addresses: str
    indent: str
    directives: list[tuple[str, list[str], str]] = field(default_factory=list)
    sections: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (name, args, raw lines)


def _logical_lines(lines: list[str], start: int, end: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf = ""
    first = start
    for index in range(start, end):
        text = lines[index].rstrip("\n")
        if not buf:
            first = index
        if text.endswith("\\"):
            buf += text[:-1] + " "
            continue
        out.append((first, buf + text))
        buf = ""
    return out


def _args(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def parse_vhost(lines: list[str], start: int) -> Vhost:
    """Parse the `<VirtualHost>` opened at line index `start`."""
    match = SECTION_OPEN.match(lines[start])
    if not match or match.group(1).lower() != "virtualhost":
        raise ValueError(f"line {start + 1} does not open a <VirtualHost>")
    depth = 0
    end = None
    for index in range(start, len(lines)):
        if SECTION_OPEN.match(lines[index]):
            depth += 1
        elif SECTION_CLOSE.match(lines[index]):
            depth -= 1
            if depth == 0:
                end = index
                break
    if end is None:
        raise ValueError(f"<VirtualHost> at line {start + 1} is not closed")
    opening = lines[start]
    vhost = Vhost(start, end, match.group(2).strip(), opening[: len(opening) - len(opening.lstrip())])
    section: tuple[str, str, list[str]] | None = None
    depth = 0
    for _index, text in _logical_lines(lines, start + 1, end):
        stripped = text.strip()
        if section is not None:
            section[2].append(text.rstrip())
            if SECTION_OPEN.match(text):
                depth += 1
            elif SECTION_CLOSE.match(text):
                depth -= 1
                if depth == 0:
                    vhost.sections.append(section)
                    section = None
            continue
        if not stripped or stripped.startswith("#"):
            continue
        opened = SECTION_OPEN.match(text)
        if opened:
            section = (opened.group(1), opened.group(2).strip(), [text.rstrip()])
            depth = 1
            continue
        words = _args(stripped)
        vhost.directives.append((words[0], words[1:], stripped))
    return vhost


def _dedent(raw: list[str]) -> list[str]:
    widths = [len(x) - len(x.lstrip()) for x in raw if x.strip()]
    cut = min(widths) if widths else 0
    return [x[cut:] for x in raw]


def _allowed_ciphers(params: dict[str, Any]) -> str:
    """The profile's TLS 1.2 allowlist (OpenSSL or IANA names) as an SSLCipherSuite string."""
    names = [str(n) for n in params.get("allowed_tls12_ciphers") or []]
    mapped = [OPENSSL_NAMES.get(n, n) for n in names]
    return ":".join(mapped) or "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"


AUTH_DIRECTIVES = ("authtype", "authuserfile", "require", "satisfy", "order", "allow", "deny")


def _replaced(low: str, args: list[str]) -> bool:
    """Directives the template writes itself (the site's own copies are dropped)."""
    if low == "proxypassreverse":
        return len(args) >= 2 and args[0] in ("/", "/v2/", "/v2")
    if low == "requestheader":
        return len(args) >= 2 and args[1].lower() == "x-forwarded-proto"
    if low == "header":
        return any(a.lower() == "strict-transport-security" for a in args[:4])
    return low in MANAGED


def vhost_text(vhost: Vhost, *, ciphers: str, auth_user_file: str | None, token_auth: bool,
               proxy_timeout: int, checks: tuple[str, ...], hsts_max_age: int = HSTS_MAX_AGE,
               stapling_cache: bool = False, stapling: bool = True) -> str:
    head: list[str] = []
    certs: list[str] = []
    keys: list[str] = []
    kept: list[str] = []
    upstream = None
    proxy_path = "/"
    timeout = proxy_timeout
    for name, args, raw in vhost.directives:
        low = name.lower()
        if low in ("servername", "serveralias"):
            head.append(raw)
        elif low == "sslcertificatefile" and args:
            certs.append(args[0])
        elif low == "sslcertificatekeyfile" and args:
            keys.append(args[0])
        elif low == "proxytimeout" and args and args[0].isdigit():
            timeout = max(timeout, int(args[0]))
        elif low == "proxypass" and len(args) >= 2 and args[0] in ("/", "/v2/", "/v2"):
            if upstream is None:
                proxy_path, upstream = args[0], args[1]
        elif not _replaced(low, args):
            kept.append(raw)
    auth_name = "Registry Authentication"
    location_kept: list[str] = []
    basic = not token_auth and bool(auth_user_file)
    for name, section_args, section_lines in vhost.sections:
        if basic and name.lower() == "location" and section_args.strip("\"'") in ("/v2/", "/v2"):
            for line in section_lines[1:-1]:
                words = _args(line.strip())
                if not words or words[0].startswith("#"):
                    continue
                low = words[0].lower()
                if low == "authname" and len(words) > 1:
                    auth_name = " ".join(words[1:])
                elif low not in AUTH_DIRECTIVES and not low.startswith("<"):
                    location_kept.append(line.strip())
            continue
        kept += ["", *_dedent(section_lines)]
    if upstream is None:
        raise ValueError("the vhost has no ProxyPass to the registry")
    certificates = [(c, keys[i] if i < len(keys) else None) for i, c in enumerate(certs)]
    return render("apache-vhost.conf.j2", NAME, checks, indent=vhost.indent, addresses=vhost.addresses or "*:443",
                  head=head, certificates=certificates, protocols=GUIDE_PROTOCOLS, ciphers=ciphers,
                  proxy_path=proxy_path, upstream=upstream, proxy_timeout=timeout, kept=kept,
                  basic_auth=basic, auth_name=auth_name, auth_user_file=auth_user_file,
                  location_kept=location_kept, hsts_max_age=hsts_max_age,
                  stapling=stapling, stapling_cache=STAPLING_CACHE if stapling and stapling_cache else "")


ISSUER_DIRECTIVES = ("sslcacertificatefile", "sslcacertificatepath", "sslcertificatechainfile")


def issuer_available(lines: list[str], vhost: Vhost) -> bool:
    """Whether Apache can find the issuer of the vhost's certificates, which mod_ssl needs to build
    an OCSP request: every SSLCertificateFile holds a chain (leaf + issuer), or the file names
    SSLCACertificateFile / SSLCACertificatePath / SSLCertificateChainFile. Without it
    `SSLUseStapling On` only logs "ssl_stapling_init_cert: can't retrieve issuer certificate"."""
    if any(ln.strip().split(None, 1)[0].lower() in ISSUER_DIRECTIVES for ln in lines if ln.strip()):
        return True
    return hold_chains([args[0] for name, args, _raw in vhost.directives
                        if name.lower() == "sslcertificatefile" and args])


def rewrite(text: str, line: int, **kwargs: Any) -> str:
    """The file with the vhost at `line` re-rendered; SSLUseStapling needs a server-level
    SSLStaplingCache, written before the vhost when the file has none."""
    lines = text.splitlines(keepends=True)
    vhost = parse_vhost(lines, line - 1)
    has_cache = any(ln.strip().lower().startswith("sslstaplingcache") for ln in lines)
    block = vhost_text(vhost, stapling_cache=not has_cache, stapling=issuer_available(lines, vhost), **kwargs)
    return "".join(lines[: vhost.start]) + block + "".join(lines[vhost.end + 1:])


def generate(site: Site, plan: Plan) -> None:
    failing = site.failing_ids()
    facts = site.value("config.apache") or {}
    claimed_config = [c for c in CONFIG_CHECKS if c in failing]
    claimed_wire = [c for c in WIRE_CHECKS if c in failing]
    if "tls.certificate" in failing:
        subjects = tuple(r.subject for r in site.failing("tls.certificate"))
        plan.texts.append(TextRemedy(
            "tls.certificate", subjects,
            "No config fixes a certificate: renew it (ACME client or your CA) with RSA >= 2048 or EC >= 256 "
            "bits, a SHA-256 signature, the registry's host name in subjectAltName and more than the "
            "profile's minimum days left; install the chain in SSLCertificateFile and reload Apache "
            "(apache2ctl graceful).", NAME))
    anonymous = "auth.anonymous-denied" in failing
    if not (claimed_config or claimed_wire or anonymous):
        return
    vhost = facts.get("vhost") or {}
    where = split_where(vhost.get("where"))
    if where is None:
        if not facts:
            return  # no Apache on this host: the nginx generator owns TLS and auth, or says why not
        if claimed_config or claimed_wire:
            plan.notes.append(f"{NAME}: no Apache vhost for the registry was found: nothing generated")
        if anonymous:
            plan.texts.append(TextRemedy("auth.anonymous-denied", (), "Put authentication in front of /v2/: the "
                                         "guide's <Location /v2/> with AuthType Basic, a bcrypt AuthUserFile and "
                                         "Require valid-user, or token authentication in the registry.", NAME))
        return
    path, line = where
    live = read_live(path)
    if live is None:
        plan.notes.append(f"{NAME}: {path} is not readable here: nothing generated")
        return
    registry = (site.value("config.registry") or {}).get("config") or {}
    token_auth = isinstance(registry.get("auth"), dict) and "token" in registry["auth"]
    auth_file = (facts.get("auth_user_file") or {}).get("path") or (
        ((facts.get("v2_access") or {}).get("auth_user_file") or {}).get("value"))
    auth_exists = bool((facts.get("auth_user_file") or {}).get("exists"))
    claimed = [*claimed_config, *claimed_wire]
    if anonymous and (token_auth or auth_exists):
        claimed.append("auth.anonymous-denied")
    if "proxy.apache-auth" in claimed and not (token_auth or auth_exists):
        claimed.remove("proxy.apache-auth")
        plan.texts.append(TextRemedy("proxy.apache-auth", (path,),
                                     "Create the htpasswd file with bcrypt entries (htpasswd -B -c FILE USER), "
                                     "name it in AuthUserFile, then run remediate again.", NAME))
    try:
        live_lines = live.decode().splitlines()
        stapling = issuer_available(live_lines, parse_vhost(live_lines, line - 1))
    except (ValueError, UnicodeDecodeError) as exc:
        plan.notes.append(f"{NAME}: cannot rewrite {path}: {exc}")
        return
    if "tls.ocsp-stapling" in claimed and not stapling:
        claimed.remove("tls.ocsp-stapling")  # SSLUseStapling is not written: nothing to expect from it
        plan.texts.append(TextRemedy("tls.ocsp-stapling", (path,),
                                     "Apache cannot find the issuer of the vhost's certificates, so it cannot "
                                     "build an OCSP request and no SSLUseStapling was written: put the issuer "
                                     "certificate in SSLCertificateFile after the server certificate (the chain) "
                                     "or name it in SSLCACertificateFile, make sure the certificate names an OCSP "
                                     "responder Apache can reach, then run remediate again.", NAME))
        if not claimed:
            return  # stapling was all that failed here: re-rendering the vhost would fix nothing
    elif "tls.ocsp-stapling" in claimed:
        plan.texts.append(TextRemedy("tls.ocsp-stapling", (path,),
                                     "SSLUseStapling staples only when Apache can build the OCSP request: the "
                                     "issuer certificate must be in SSLCertificateFile's chain (or in "
                                     "SSLCACertificateFile) and the certificate must name an OCSP responder "
                                     "Apache can reach.", NAME))
    params = site.params("proxy.apache-tls") or site.params("tls.ciphers")
    try:
        text = rewrite(live.decode(), line, ciphers=_allowed_ciphers(params), auth_user_file=auth_file,
                       token_auth=token_auth, proxy_timeout=int(site.params("proxy.apache-proxy").get(
                           "min_proxy_timeout_seconds", 900)), checks=tuple(claimed),
                       hsts_max_age=max(HSTS_MAX_AGE, int(site.params("http.hsts").get("min_max_age") or 0)))
    except (ValueError, UnicodeDecodeError) as exc:
        plan.notes.append(f"{NAME}: cannot rewrite {path}: {exc}")
        return
    if text.encode() != live:
        plan.files.append(FileChange(path=path, generator=NAME, checks=tuple(claimed), content=text.encode(),
                                     validate="apache", service="apache",
                                     note="registry vhost re-rendered; the rest of the file kept"))
        plan.expected |= set(claimed)
