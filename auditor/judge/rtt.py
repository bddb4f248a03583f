"""Connect timeouts that follow the measured round-trip time (pure: no I/O, no clock).

Contract: `RttEstimator` keeps a smoothed RTT and its variation from the samples it is given
(seconds a TCP connect took to be answered, accepted or refused), as TCP (RFC 6298) and nmap do,
and proposes a timeout `srtt + 4 * rttvar` clamped to [floor, ceiling]. Before any sample it
proposes `initial` (also clamped). `ConnectTimeouts` is the user's setting (milliseconds on the
command line: `--connect-timeout FLOOR:CEILING`, and `--syn-retransmit` for the patient wait).

A port is called filtered when two attempts, the second started one timeout T after the first,
stay silent for 2 T (nmap's rule: a probe and its retransmission). With `syn_retransmit` the wait
lasts until the kernel's retransmission of the first SYN (1 s after it) could have been answered:
slower, but a listener that drops SYNs for up to a second (a full accept queue) is still seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_FLOOR = 0.1
DEFAULT_CEILING = 3.0
DEFAULT_INITIAL = 1.0
ALPHA = 1 / 8
BETA = 1 / 4
# The kernel retransmits an unanswered SYN after its initial RTO (1 s on Linux, RFC 6298). A SYN
# dropped on the way (loss, or a listener whose accept queue is full) is answered only then; the
# patient wait (`syn_retransmit`) waits for that retransmission's answer too.
SYN_RETRANSMIT = 1.0


@dataclass(frozen=True)
class ConnectTimeouts:
    """Bounds of the adaptive connect timeout, seconds: floor <= timeout <= ceiling; whether a
    silent port is waited on until the first SYN's kernel retransmission could be answered."""

    floor: float = DEFAULT_FLOOR
    ceiling: float = DEFAULT_CEILING
    initial: float = DEFAULT_INITIAL
    syn_retransmit: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.ceiling:
            raise ValueError("the connect timeout's floor must be positive and at most its ceiling")

    @classmethod
    def parse(cls, text: str, *, syn_retransmit: bool = False) -> ConnectTimeouts:
        """`FLOOR:CEILING` or `FLOOR` in milliseconds (e.g. `100:3000`); ValueError when malformed."""
        low, sep, high = text.strip().partition(":")
        try:
            floor = float(low) / 1000
            ceiling = float(high) / 1000 if sep else max(floor, DEFAULT_CEILING)
        except ValueError:
            raise ValueError(f"{text!r} is not FLOOR:CEILING in milliseconds (e.g. 100:3000)") from None
        if floor <= 0 or ceiling < floor or ceiling > 60:
            raise ValueError(f"{text!r}: need 0 < FLOOR <= CEILING <= 60000 ms")
        return cls(floor=floor, ceiling=ceiling, initial=min(max(DEFAULT_INITIAL, floor), ceiling),
                   syn_retransmit=syn_retransmit)

    @classmethod
    def from_json(cls, data: object) -> ConnectTimeouts:
        """The inverse of `to_json`; ValueError when `data` is not such a mapping."""
        if not isinstance(data, dict):
            raise ValueError("the connect timeout setting is not a mapping")
        text = f"{data.get('floor_ms', DEFAULT_FLOOR * 1000)}:{data.get('ceiling_ms', DEFAULT_CEILING * 1000)}"
        return cls.parse(text, syn_retransmit=data.get("syn_retransmit") is True)

    def to_json(self) -> dict[str, float | bool]:
        return {"floor_ms": round(self.floor * 1000, 1), "ceiling_ms": round(self.ceiling * 1000, 1),
                "syn_retransmit": self.syn_retransmit}


@dataclass
class RttEstimator:
    """Smoothed RTT (`srtt`) and variation (`rttvar`) over the samples seen; the timeout they give."""

    bounds: ConnectTimeouts = field(default_factory=ConnectTimeouts)
    srtt: float | None = None
    rttvar: float = 0.0
    samples: int = 0

    def add(self, rtt: float) -> None:
        """Account one answered connect that took `rtt` seconds (negative values count as 0)."""
        rtt = max(0.0, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        self.samples += 1

    def timeout(self) -> float:
        """Seconds to wait for a connect's answer: srtt + 4 rttvar (initial before samples), clamped."""
        raw = self.bounds.initial if self.srtt is None else self.srtt + 4 * self.rttvar
        return min(self.bounds.ceiling, max(self.bounds.floor, raw))


def whole_wait(timeout: float, bounds: ConnectTimeouts) -> float:
    """How long a port may stay silent before it is called filtered, from the first SYN: two
    timeouts (the second attempt starts after the first); with `syn_retransmit`, at least long
    enough for the first SYN's retransmission (SYN_RETRANSMIT) to be answered within a timeout."""
    if bounds.syn_retransmit:
        return max(2 * timeout, SYN_RETRANSMIT + timeout)
    return 2 * timeout


def filtered_detail(waited: float, second_after: float, srtt: float | None) -> str:
    """The evidence's words for a port that never answered: "no answer in X ms, RTT Y ms; ..."."""
    rtt = f"RTT {srtt * 1000:.1f} ms" if srtt is not None else "RTT unknown (no connection to the host answered)"
    retransmit = ", the first SYN's retransmission included" if waited >= SYN_RETRANSMIT + second_after else ""
    return (f"no answer in {waited * 1000:.0f} ms, {rtt}; 2 attempts (the second after "
            f"{second_after * 1000:.0f} ms{retransmit})")
