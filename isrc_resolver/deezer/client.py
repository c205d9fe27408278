"""Rate-limited, retrying access to Deezer's ``GET /track/isrc:{ISRC}``.

No token and no daily quota; the limit is a rate (about 50 requests per 5 s per address),
past which Deezer answers 200 with error code 4. The client runs its own
:class:`~isrc_resolver.http.ratelimit.RateGate`, starting under that rate and learning from
each code 4 as Spotify's gate learns from a 429: every request waits for the pause, and
the refused one is asked again. Transient failures (5xx, resets, bodies that are not JSON,
code 700) are retried with backoff; a lookup that still fails is an ``error`` listing, not
an exception: Spotify's part of the run goes on. After a few ISRCs in a row fail that way
the service is taken to be down and the rest get ``error`` without a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ..http.ratelimit import RateGate
from ..http.retry import RetryPolicy, Transient, parse_retry_after
from ..http.stats import ClientStats
from ..http.transport import AiohttpTransport, HttpRequest, Transport, TransportError
from ..listing import Listing, ListingStatus
from ..settings import Settings
from .answer import PROVIDER, Busy, QuotaSignal, Refused, listing_of

__all__ = ["DeezerClient"]

log = logging.getLogger("isrc_resolver")

Sleep = Callable[[float], Awaitable[None]]

QUOTA_PAUSE = 2.0  # seconds every request waits after a code 4 (Deezer gives no Retry-After)
DOWN_AFTER = 3  # ISRCs in a row that failed every retry: the service is down for this run
_MAX_THROTTLED = 50  # code-4 answers one lookup sits out before it gives up


class _Throttled(Exception):
    """A code 4 (or a proxy's 429): the gate pauses; the request is asked again."""


class DeezerClient:
    """One ISRC at a time, as a :class:`~isrc_resolver.listing.Listing`. Use as an async
    context manager, inside a running event loop."""

    name = PROVIDER
    batch = 1  # one ISRC per request

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = settings.endpoint("deezer_api_url").rstrip("/")
        self.policy = RetryPolicy(max_retries=settings.max_retries, backoff_cap=8.0)
        self.stats = ClientStats()
        self._settings = settings
        self._transport: Transport = transport or AiohttpTransport(
            timeout=settings.timeout, connections=settings.concurrency + 2
        )
        self._sleep = sleep
        self._clock = wall_clock
        self._gate: RateGate | None = None
        self._failed_in_a_row = 0
        self.down: str | None = None  # why the service is taken to be down (None: it is not)

    def __repr__(self) -> str:
        return f"DeezerClient(api_url={self.api_url!r})"

    async def __aenter__(self) -> DeezerClient:
        s = self._settings
        self._gate = RateGate(s.rate_of(PROVIDER), adaptive=s.adaptive, sleep=self._sleep)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    @property
    def gate(self) -> RateGate:
        if self._gate is None:
            raise RuntimeError("DeezerClient is not open; use `async with DeezerClient(...)`")
        return self._gate

    async def ask(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """The pipeline's way in (see ``pipeline.second.Catalogue``): one ISRC a request."""
        return {isrc: await self.lookup(isrc) for isrc in isrcs}

    async def lookup(self, isrc: str) -> Listing:
        """Deezer's track for ``isrc`` (valid, normalised): found, not_found, or error."""
        if self.down is not None:
            return Listing.missing(PROVIDER, isrc, ListingStatus.ERROR, self.down)
        try:
            listing = await self._retrying(isrc)
        except Refused as exc:
            log.debug("deezer %s: %s", isrc, exc)
            return Listing.missing(PROVIDER, isrc, ListingStatus.ERROR, f"deezer: {exc}")
        except (Transient, Busy, _Throttled) as exc:
            self._failed_in_a_row += 1
            why = f"deezer: {exc} (gave up after {self.policy.max_retries} retries)"
            if self._failed_in_a_row >= DOWN_AFTER and self.down is None:
                self.down = f"deezer: not answering ({exc}); the next run asks again"
                log.warning("Deezer is not answering (%s): its part of this run stops", exc)
            return Listing.missing(PROVIDER, isrc, ListingStatus.ERROR, why)
        self._failed_in_a_row = 0
        return listing

    async def _retrying(self, isrc: str) -> Listing:
        throttled = 0  # code-4 answers for this ISRC: they do not count as retries

        def failure(state: RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome is not None else None

        def wait(state: RetryCallState) -> float:
            if isinstance(failure(state), _Throttled):
                return 0.0  # the gate holds every request until the pause is over
            return self.policy.backoff(state.attempt_number)

        def stop(state: RetryCallState) -> bool:
            if isinstance(failure(state), _Throttled):
                return throttled >= _MAX_THROTTLED
            return state.attempt_number - throttled > self.policy.max_retries

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((Transient, Busy, _Throttled)),
            stop=stop,
            wait=wait,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.stats.retries += 1
                try:
                    return await self._attempt(isrc)
                except _Throttled:
                    throttled += 1
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, isrc: str) -> Listing:
        gate = self.gate
        admitted = await gate.wait()
        self.stats.requests["track"] += 1
        url = f"{self.api_url}/track/isrc:{quote(isrc)}"
        try:
            response = await self._transport.send(HttpRequest("GET", url))
        except TransportError as exc:
            self.stats.transport_errors += 1
            raise Transient(f"connection failed ({exc})") from None
        status = response.status
        self.stats.statuses[status] += 1
        if status == 429:  # a proxy's way of saying code 4
            self.stats.throttled += 1
            gate.pause(parse_retry_after(response.headers, QUOTA_PAUSE), admitted_at=admitted)
            raise _Throttled("429")
        if status >= 500 or status == 408:
            raise Transient(f"HTTP {status}", status=status)
        if status != 200:
            raise Refused(f"HTTP {status}")
        try:
            body = json.loads(response.body)
        except ValueError:
            raise Transient("200 with a body that is not JSON", status=200) from None
        try:
            listing = listing_of(isrc, body, self._clock())
        except QuotaSignal:
            self.stats.throttled += 1
            gate.pause(QUOTA_PAUSE, admitted_at=admitted)
            raise _Throttled("code 4, quota limit exceeded") from None
        gate.record_success(admitted)
        return listing
