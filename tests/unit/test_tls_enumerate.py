"""The elimination walk and the preference test, against a modelled server (pure, no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from auditor.tlsprobe.enumerate import enumerate_chunked, enumerate_suites, server_preference
from auditor.tlsprobe.handshake import ACCEPTED, CLOSED, ERROR, REFUSED, HelloResult


class ModelServer:
    """Accepts `suites` (in its preference order); picks by its order or the client's."""

    def __init__(self, suites: Sequence[int], server_order: bool = True, fail_after: int | None = None,
                 refusal: str = REFUSED) -> None:
        self.suites = list(suites)
        self.server_order = server_order
        self.fail_after = fail_after
        self.refusal = refusal
        self.offers: list[list[int]] = []

    async def __call__(self, offer: Sequence[int]) -> HelloResult:
        self.offers.append(list(offer))
        if self.fail_after is not None and len(self.offers) > self.fail_after:
            return HelloResult(ERROR, "timeout after 1.0s")
        order = self.suites if self.server_order else list(offer)
        pool = offer if self.server_order else self.suites
        choice = next((s for s in order if s in pool), None)
        if choice is None:
            return HelloResult(self.refusal, "alert handshake_failure")
        return HelloResult(ACCEPTED, "ServerHello", "TLSv1.2", choice)


OFFER = list(range(1, 301))


@pytest.mark.parametrize("server_order", [True, False])
def test_walk_finds_exactly_the_accepted_set_with_n_plus_one_handshakes(server_order: bool) -> None:
    accepted = [250, 3, 77, 120, 9]
    server = ModelServer(accepted, server_order)
    result = asyncio.run(enumerate_suites(server, OFFER))
    assert sorted(result.accepted) == sorted(accepted)
    assert result.error is None
    assert result.handshakes == len(accepted) + 1 == len(server.offers)
    if server_order:
        assert result.accepted == accepted  # discovery order is the server's preference


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_chunked_walk_finds_the_same_set(chunks: int) -> None:
    accepted = [250, 3, 77, 120, 9, 10, 11]
    server = ModelServer(accepted)
    result = asyncio.run(enumerate_chunked(server, OFFER, chunks))
    assert sorted(result.accepted) == sorted(accepted)
    assert result.handshakes == len(accepted) + chunks


def test_seed_answer_saves_a_handshake() -> None:
    server = ModelServer([5, 6])
    first = asyncio.run(server(OFFER))
    result = asyncio.run(enumerate_chunked(server, OFFER, 1, first=first))
    assert sorted(result.accepted) == [5, 6]
    assert len(server.offers) == 3  # the seed, 6, then the refusal


def test_close_ends_the_walk_like_a_refusal() -> None:
    result = asyncio.run(enumerate_suites(ModelServer([1, 2], refusal=CLOSED), OFFER))
    assert sorted(result.accepted) == [1, 2] and result.error is None


def test_error_mid_walk_is_reported_with_a_partial_list() -> None:
    server = ModelServer([1, 2, 3, 4], fail_after=2)
    result = asyncio.run(enumerate_suites(server, OFFER))
    assert result.accepted == [1, 2]
    assert result.error == "timeout after 1.0s"


def test_server_choosing_an_unoffered_suite_is_an_error() -> None:
    async def liar(offer: Sequence[int]) -> HelloResult:
        return HelloResult(ACCEPTED, "ServerHello", "TLSv1.2", 0xC030)
    result = asyncio.run(enumerate_suites(liar, [1, 2, 3]))
    assert result.accepted == [] and result.error == "server chose suite 0xC030, which was not offered"


def test_repeating_server_cannot_loop_forever() -> None:
    # a server that picks the same suite again after it was removed is caught on the next round
    calls = 0

    async def stuck(offer: Sequence[int]) -> HelloResult:
        nonlocal calls
        calls += 1
        return HelloResult(ACCEPTED, "ServerHello", "TLSv1.2", 1)
    result = asyncio.run(enumerate_suites(stuck, [1, 2, 3]))
    assert result.accepted == [1] and result.error and calls == 2


@pytest.mark.parametrize("server_order", [True, False])
def test_preference(server_order: bool) -> None:
    server = ModelServer([7, 8, 9], server_order)
    pref = asyncio.run(server_preference(server, [7, 8, 9]))
    assert pref["enforced"] is server_order


def test_preference_needs_two_suites() -> None:
    pref = asyncio.run(server_preference(ModelServer([7]), [7]))
    assert pref["enforced"] is None
