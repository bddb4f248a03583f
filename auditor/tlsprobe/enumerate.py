"""Cipher-suite enumeration by elimination, and the server-preference test.

Pure algorithms over a `TryHello` callback (offer a list of codes, get the server's answer), so
they are unit-tested without sockets. Enumeration offers every remaining suite, removes the one
the server chose and repeats until the server refuses: n accepted suites cost n + 1 handshakes
per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from auditor.tlsprobe.handshake import ACCEPTED, CLOSED, REFUSED, HelloResult

TryHello = Callable[[Sequence[int]], Awaitable[HelloResult]]


@dataclass
class Enumeration:
    """Accepted codes in the order the server chose them; `error` set when the walk was cut short
    (the list is then a lower bound)."""

    accepted: list[int] = field(default_factory=list)
    error: str | None = None
    handshakes: int = 0


def _take(result: HelloResult, remaining: list[int], out: Enumeration) -> bool:
    """Fold one answer into `out`; True while the walk should go on."""
    if result.status == ACCEPTED:
        if result.suite is None or result.suite not in remaining:
            code = "none" if result.suite is None else f"0x{result.suite:04X}"
            out.error = f"server chose suite {code}, which was not offered"
            return False
        out.accepted.append(result.suite)
        remaining.remove(result.suite)
        return bool(remaining)
    if result.status in (REFUSED, CLOSED):
        return False
    out.error = result.reason or "handshake failed"
    return False


async def enumerate_suites(try_hello: TryHello, offer: Sequence[int], *,
                           first: HelloResult | None = None,
                           max_handshakes: int = 1000) -> Enumeration:
    """Walk `offer` by elimination. `first`, when given, is the answer to offering all of `offer`
    (already paid for by the protocol test) and saves one handshake."""
    out = Enumeration()
    remaining = list(offer)
    if first is not None and not _take(first, remaining, out):
        return out
    while remaining:
        if out.handshakes >= max_handshakes:
            out.error = f"stopped after {max_handshakes} handshakes"
            break
        out.handshakes += 1
        if not _take(await try_hello(remaining), remaining, out):
            break
    return out


async def enumerate_chunked(try_hello: TryHello, offer: Sequence[int], chunks: int, *,
                            first: HelloResult | None = None) -> Enumeration:
    """Split `offer` into `chunks` parts walked concurrently; the union is the accepted set.

    `first` (the answer to the whole offer) seeds the chunk holding the suite it chose.
    Costs one extra refusal per chunk, and divides the walk's length by about `chunks`.
    """
    codes = list(offer)
    if first is not None and (first.status != ACCEPTED or first.suite not in codes):
        out = Enumeration()
        _take(first, codes, out)
        return out
    chunks = max(1, min(chunks, len(codes)))
    parts = [codes[i::chunks] for i in range(chunks)]
    seeds = [first if first is not None and first.suite in part else None for part in parts]
    results = await asyncio.gather(*(enumerate_suites(try_hello, part, first=seed)
                                     for part, seed in zip(parts, seeds, strict=True)))
    merged = Enumeration()
    for result in results:
        merged.accepted.extend(result.accepted)
        merged.handshakes += result.handshakes
        if result.error and merged.error is None:
            merged.error = result.error
    return merged


async def server_preference(try_hello: TryHello, accepted: Sequence[int]) -> dict[str, object]:
    """Whether the server picks by its own order: offer the accepted suites forwards and
    backwards; the same choice both times means the server's order wins."""
    if len(accepted) < 2:
        return {"enforced": None, "reason": "fewer than two suites accepted"}
    forward = await try_hello(list(accepted))
    backward = await try_hello(list(reversed(accepted)))
    if not (forward.accepted and backward.accepted):
        failed = forward if not forward.accepted else backward
        return {"enforced": None, "reason": f"preference test failed: {failed.reason}"}
    enforced = forward.suite == backward.suite
    return {
        "enforced": enforced,
        "forward_choice": f"0x{forward.suite:04X}" if forward.suite is not None else None,
        "backward_choice": f"0x{backward.suite:04X}" if backward.suite is not None else None,
    }
