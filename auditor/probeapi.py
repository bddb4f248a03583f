"""The probe API: named, memoised, async evidence providers with timeouts.

A probe is a module-level :class:`Probe` made with :func:`probe`. It gathers facts (never
verdicts) and returns JSON-serialisable data, so evidence can be saved and re-judged offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.errors import PluginError
from auditor.model import JSON

if TYPE_CHECKING:
    import httpx

    from auditor.credentials import Credentials
    from auditor.target import Target

ProbeFn = Callable[["ProbeContext"], Awaitable[JSON]]


@dataclass(frozen=True)
class Probe:
    """A named evidence provider with its own timeout (seconds)."""

    name: str
    fn: ProbeFn
    timeout: float
    description: str
    shape: Any = None  # the TypedDict of its value (auditor/judge/shapes.py); None: undeclared (plugins)


def probe(name: str, *, timeout: float = 30.0, shape: Any = None) -> Callable[[ProbeFn], Probe]:
    """Decorate an async function `fn(ctx) -> JSON` into a Probe whose value has the declared `shape`
    (a TypedDict of auditor/judge/shapes.py; its JSON Schema is checked when evidence is saved/loaded)."""
    if not name or "." not in name:
        raise PluginError(f"probe name {name!r} is not of the form area.fact")
    if timeout <= 0:
        raise PluginError(f"probe {name}: timeout must be positive")

    def wrap(fn: ProbeFn) -> Probe:
        doc = (fn.__doc__ or "").strip().splitlines()
        return Probe(name=name, fn=fn, timeout=timeout, description=doc[0] if doc else name, shape=shape)

    return wrap


class ProbeContext:
    """What a probe may use: the target, credentials, other evidence, a shared HTTP client."""

    def __init__(
        self,
        target: Target,
        credentials: Credentials | None,
        fetch: Callable[[str], Awaitable[JSON]],
        client_factory: Callable[[], httpx.AsyncClient],
        deadline: float,
    ) -> None:
        self.target = target
        self.credentials = credentials
        self._fetch = fetch
        self._client_factory = client_factory
        self.deadline = deadline

    async def evidence(self, name: str) -> JSON:
        """The value of another probe (gathered once); raises ProbeUnavailable or NotApplicable."""
        return await self._fetch(name)

    def http(self) -> httpx.AsyncClient:
        """The audit's shared HTTP client (verifying TLS against the target's CA bundle)."""
        return self._client_factory()

    def remaining(self) -> float:
        """Seconds left before the audit's deadline."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())
