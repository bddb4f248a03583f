"""Parse `iptables-save` / `ip6tables-save` text into the evaluator's tables and base chains.

Contract: :func:`parse_save` never raises on a rule it does not understand: an unmodelled match
becomes :class:`Unknown` (the evaluator errs only if the rule can be reached and could match), an
unmodelled target becomes an ``unknown`` target. A malformed file raises :class:`ParseError`.
The nat table is parsed (DNAT rules reveal published container ports) but is not a filter.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Callable

from .evaluate import (
    ACCEPT,
    CONTINUE,
    DNAT,
    DROP,
    GOTO,
    JUMP,
    REJECT,
    RETURN,
    UNKNOWN,
    AddrMatch,
    AddrTypeMatch,
    Always,
    BaseChain,
    Chain,
    CtStateMatch,
    IfaceMatch,
    Interval,
    Match,
    Packet,
    PortMatch,
    ProtoMatch,
    Rule,
    Table,
    Target,
    TcpFlagsMatch,
    Tri,
    Unknown,
    network_interval,
)

# (table, chain) -> (hook, priority) for the chains a packet to this host or through it meets.
BASE_CHAINS: dict[tuple[str, str], tuple[str, int]] = {
    ("raw", "PREROUTING"): ("prerouting", -300),
    ("mangle", "PREROUTING"): ("prerouting", -150),
    ("mangle", "INPUT"): ("input", -150),
    ("mangle", "FORWARD"): ("forward", -150),
    ("filter", "INPUT"): ("input", 0),
    ("filter", "FORWARD"): ("forward", 0),
    ("security", "INPUT"): ("input", 50),
    ("security", "FORWARD"): ("forward", 50),
    # locally generated packets DNATed to a container (nat OUTPUT) leave through the output hook
    ("raw", "OUTPUT"): ("output", -300),
    ("mangle", "OUTPUT"): ("output", -150),
    ("filter", "OUTPUT"): ("output", 0),
    ("security", "OUTPUT"): ("output", 50),
}
CONTINUE_TARGETS = {"LOG", "NFLOG", "ULOG", "TRACE"}
VERDICTS = {"ACCEPT": ACCEPT, "DROP": DROP, "REJECT": REJECT, "RETURN": RETURN}
KNOWN_MODULES = {"tcp", "udp", "multiport", "conntrack", "state", "comment", "iprange", "addrtype"}
TCP_FLAG_NAMES = {"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ALL", "NONE"}


class ParseError(ValueError):
    """The text is not iptables-save output."""


def _family(tool: str) -> int:
    return 6 if tool.startswith("ip6") else 4


def _addr_intervals(text: str, family: int) -> tuple[Interval, ...]:
    out = []
    for part in text.split(","):
        net = ipaddress.ip_network(part, strict=False)
        if net.version != family:
            raise ParseError(f"address {part} is not IPv{family}")
        out.append(network_interval(net))
    return tuple(out)


def _range_interval(text: str, family: int) -> tuple[Interval, ...]:
    first, _, last = text.partition("-")
    lo, hi = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
    if lo.version != family or hi.version != family:
        raise ParseError(f"range {text} is not IPv{family}")
    return ((int(lo), int(hi)),)


def _ports(text: str) -> tuple[Interval, ...]:
    out = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        lo = int(first) if first else 0
        hi = int(last) if last else (65535 if ":" in part else lo)
        out.append((lo, hi))
    return tuple(out)


class _RuleParser:
    """Turns the tokens of one `-A CHAIN ...` line into matches and a target."""

    def __init__(self, tokens: list[str], family: int, chains: set[str]) -> None:
        self.tokens = tokens
        self.family = family
        self.chains = chains
        self.pos = 0
        self.matches: list[Match] = []
        self.target = Target(CONTINUE, name="(no target)")
        self.module = ""
        self.proto: str | None = None

    def next(self) -> str:
        if self.pos >= len(self.tokens):
            raise ParseError(f"option {self.tokens[self.pos - 1]} lacks its value")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> tuple[list[Match], Target]:
        while self.pos < len(self.tokens):
            negate = False
            token = self.next()
            if token == "!":
                negate = True
                token = self.next()
            if token in ("-j", "--jump", "-g", "--goto"):
                self._target(token, self.next())
                return self.matches, self.target
            self._option(token, negate)
        return self.matches, self.target

    def _option(self, opt: str, negate: bool) -> None:
        handlers: dict[str, Callable[[bool], None]] = {
            "-s": lambda n: self._addr("src", n), "--source": lambda n: self._addr("src", n),
            "-d": lambda n: self._addr("dst", n), "--destination": lambda n: self._addr("dst", n),
            "-i": lambda n: self._iface("in", n), "--in-interface": lambda n: self._iface("in", n),
            "-o": lambda n: self._iface("out", n), "--out-interface": lambda n: self._iface("out", n),
            "-p": self._proto, "--protocol": self._proto,
            "-m": self._module, "--match": self._module,
        }
        if opt in handlers:
            handlers[opt](negate)
        elif opt in ("-f", "--fragment"):
            # fragments other than the first never carry a SYN's ports: a first SYN is not one
            self.matches.append(Always(text="-f") if negate else _Never("-f"))
        elif self.module in KNOWN_MODULES or (not self.module and self.proto in ("tcp", "udp")):
            if not self.module:  # `-p tcp --dport`: iptables loads the protocol's module implicitly
                self.module = str(self.proto)
            self._module_option(opt, negate)
        elif self.module:
            self._skip_values()
        else:
            raise ParseError(f"unexpected token {opt!r}")

    def _addr(self, which: str, negate: bool) -> None:
        value = self.next()
        if value == "!":
            negate, value = True, self.next()
        self.matches.append(AddrMatch(which, self.family, _addr_intervals(value, self.family), negate,  # type: ignore[arg-type]
                                      f"{'! ' if negate else ''}{'-s' if which == 'src' else '-d'} {value}"))

    def _iface(self, direction: str, negate: bool) -> None:
        value = self.next()
        self.matches.append(IfaceMatch(direction, (value,), negate,  # type: ignore[arg-type]
                                       f"{'! ' if negate else ''}{'-i' if direction == 'in' else '-o'} {value}"))

    def _proto(self, negate: bool) -> None:
        value = self.next().lower()
        self.proto = None if negate else value
        names = {value, {"6": "tcp", "17": "udp"}.get(value, value)}
        self.matches.append(ProtoMatch(frozenset(names), negate, f"{'! ' if negate else ''}-p {value}"))

    def _module(self, negate: bool) -> None:
        self.module = self.next()
        if self.module not in KNOWN_MODULES:
            self.matches.append(Unknown(f"-m {self.module}", f"-m {self.module}"))

    def _skip_values(self) -> None:
        while self.pos < len(self.tokens) and not self.tokens[self.pos].startswith("-") \
                and self.tokens[self.pos] != "!":
            self.pos += 1

    def _module_option(self, opt: str, negate: bool) -> None:
        mod = self.module
        bang = "! " if negate else ""
        if mod in ("tcp", "udp", "multiport") and opt in (
                "--dport", "--destination-port", "--sport", "--source-port", "--dports",
                "--destination-ports", "--sports", "--source-ports", "--ports"):
            value = self.next()
            proto = self.proto if self.proto in ("tcp", "udp") else (mod if mod != "multiport" else None)
            if opt == "--ports":
                # either port: for a SYN to the registry port the destination port is what counts,
                # but a source port in range matches too; model both through a two-sided match
                self.matches.append(_EitherPort(_ports(value), proto, negate, f"{bang}--ports {value}"))
                return
            which = "dport" if opt.startswith(("--d", "--destination")) else "sport"
            self.matches.append(PortMatch(which, _ports(value), proto, negate, f"{bang}{opt} {value}"))  # type: ignore[arg-type]
        elif mod == "tcp" and opt == "--syn":
            self.matches.append(TcpFlagsMatch(frozenset({"SYN", "RST", "ACK", "FIN"}), frozenset({"SYN"}),
                                              negate, f"{bang}--syn"))
        elif mod == "tcp" and opt == "--tcp-flags":
            mask, comp = self.next(), self.next()
            self.matches.append(TcpFlagsMatch(_flags(mask), _flags(comp), negate, f"{bang}--tcp-flags {mask} {comp}"))
        elif mod in ("conntrack", "state") and opt in ("--ctstate", "--state"):
            value = self.next()
            self.matches.append(CtStateMatch(frozenset(value.upper().split(",")), negate, f"{bang}{opt} {value}"))
        elif mod == "comment" and opt == "--comment":
            self.matches.append(Always(text=f"--comment {self.next()}"))
        elif mod == "iprange" and opt in ("--src-range", "--dst-range"):
            value = self.next()
            which = "src" if opt == "--src-range" else "dst"
            self.matches.append(AddrMatch(which, self.family, _range_interval(value, self.family), negate,  # type: ignore[arg-type]
                                          f"{bang}{opt} {value}"))
        elif mod == "addrtype" and opt in ("--src-type", "--dst-type"):
            value = self.next()
            which = "src" if opt == "--src-type" else "dst"
            self.matches.append(AddrTypeMatch(which, frozenset(value.upper().split(",")), negate,  # type: ignore[arg-type]
                                              f"{bang}{opt} {value}"))
        else:
            self.matches.append(Unknown(f"-m {mod} {opt}", f"-m {mod} {opt}"))
            self._skip_values()

    def _target(self, opt: str, name: str) -> None:
        rest = self.tokens[self.pos:]
        options: dict[str, str] = {}
        for i, tok in enumerate(rest):
            if tok.startswith("--"):
                options[tok] = rest[i + 1] if i + 1 < len(rest) and not rest[i + 1].startswith("--") else ""
        self.pos = len(self.tokens)
        if opt in ("-g", "--goto"):
            self.target = Target(GOTO, chain=name, name=name)
        elif name in VERDICTS:
            self.target = Target(VERDICTS[name], name=name, options=options)
        elif name in CONTINUE_TARGETS:
            self.target = Target(CONTINUE, name=name, options=options)
        elif name in self.chains:
            self.target = Target(JUMP, chain=name, name=name)
        elif name == "DNAT":
            self.target = Target(DNAT, name=name, options=options)
        else:
            self.target = Target(UNKNOWN, name=name, options=options)


class _Never(Match):
    def __init__(self, text: str) -> None:
        self.text = text

    def test(self, pkt: Packet) -> Tri:
        return False


class _EitherPort(Match):
    """multiport --ports: source or destination port in the list."""

    def __init__(self, intervals: tuple[Interval, ...], proto: str | None, negate: bool, text: str) -> None:
        self.dport = PortMatch("dport", intervals, proto, False)
        self.sport = PortMatch("sport", intervals, proto, False)
        self.negate = negate
        self.text = text

    def test(self, pkt: Packet) -> Tri:
        hit = self.dport.test(pkt) is True or self.sport.test(pkt) is True
        return hit != self.negate


def _flags(text: str) -> frozenset[str]:
    names = {f.upper() for f in text.split(",")}
    if "ALL" in names:
        return frozenset({"SYN", "ACK", "FIN", "RST", "URG", "PSH"})
    if "NONE" in names:
        return frozenset()
    unknown = names - TCP_FLAG_NAMES
    if unknown:
        raise ParseError(f"unknown TCP flag(s) {','.join(sorted(unknown))}")
    return frozenset(names)


def parse_save(text: str, tool: str = "iptables") -> dict[str, Table]:
    """Tables from iptables-save (`tool` iptables, ip6tables, or their -legacy variants)."""
    family = _family(tool)
    tables: dict[str, Table] = {}
    current: Table | None = None
    pending: list[tuple[int, str, list[str]]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = Table(tool, "ip6" if family == 6 else "ip", line[1:])
            tables[current.name] = current
            pending = []
        elif current is None:
            raise ParseError(f"line {lineno}: {line!r} outside a table")
        elif line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise ParseError(f"line {lineno}: bad chain line {line!r}")
            policy = None if parts[1] == "-" else parts[1].lower()
            current.chains[parts[0]] = Chain(parts[0], policy=policy)
        elif line == "COMMIT":
            _finish(current, pending, family)
            pending = []
        elif line.startswith("[") or line.startswith("-A"):
            tokens = _tokens(line, lineno)
            if tokens and tokens[0].startswith("["):
                tokens = tokens[1:]
            if len(tokens) < 2 or tokens[0] not in ("-A", "--append"):
                raise ParseError(f"line {lineno}: not an -A rule: {line!r}")
            pending.append((lineno, line[line.index("-A"):], tokens))
        else:
            raise ParseError(f"line {lineno}: unexpected {line!r}")
    if pending and current is not None:
        raise ParseError(f"table {current.name} has no COMMIT")
    return tables


def _tokens(line: str, lineno: int) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise ParseError(f"line {lineno}: {exc}") from None


def _finish(table: Table, pending: list[tuple[int, str, list[str]]], family: int) -> None:
    names = set(table.chains)
    for lineno, text, tokens in pending:
        chain = tokens[1]
        if chain not in table.chains:
            raise ParseError(f"line {lineno}: rule for undeclared chain {chain}")
        try:
            matches, target = _RuleParser(tokens[2:], family, names).parse()
        except (ValueError, ParseError) as exc:
            raise ParseError(f"line {lineno}: {exc}") from None
        rules = table.chains[chain].rules
        rules.append(Rule(len(rules) + 1, matches, target, text))


def base_chains(tables: dict[str, Table]) -> list[BaseChain]:
    """The chains of these tables attached to hooks on the input and forward paths."""
    out = []
    for (tname, cname), (hook, prio) in BASE_CHAINS.items():
        table = tables.get(tname)
        if table is not None and cname in table.chains:
            fam = frozenset({6}) if table.family == "ip6" else frozenset({4})
            out.append(BaseChain(table, cname, hook, prio, fam))
    return out

