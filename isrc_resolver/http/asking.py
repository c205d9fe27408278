"""What every store's client beside Spotify shares: a rate gate, retries, and "down".

:class:`StoreClient` asks for a batch of ISRCs (one, for a store without batches) and gives
back a :class:`~isrc_resolver.listing.Listing` for each. A subclass says how to build the
request (:meth:`StoreClient.request`) and how to read the answer
(:meth:`StoreClient.answer`); this class sends it through its own
:class:`~isrc_resolver.http.ratelimit.RateGate`, pauses every request on a rate signal
(:class:`Slow`: a 429, a 503 that means "slower"), retries transient failures with backoff,
and turns what still fails into ``error`` listings: the run goes on. After a few batches
in a row fail that way, the store is taken to be down: the rest get ``error`` without a
request, and the next run asks again. Each request is counted by the client's
:class:`~isrc_resolver.http.budget.Budget` (the run's ``max_requests``, shared with every
store, and the store's ledger) before it is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ..listing import Listing, ListingStatus
from ..provider import catalogues
from .budget import Budget
from .ratelimit import RateGate
from .retry import RetryPolicy, Transient, parse_retry_after
from .stats import ClientStats
from .transport import AiohttpTransport, HttpRequest, HttpResponse, Transport, TransportError

__all__ = [
    "BatchRefused",
    "Refused",
    "Slow",
    "StoreClient",
    "first_error",
    "json_body",
    "refusal",
    "split",
]

log = logging.getLogger("isrc_resolver")

Sleep = Callable[[float], Awaitable[None]]

MAX_PAGES = 10  # pages of one answer followed, at most
DOWN_AFTER = 3  # batches in a row that failed every retry: the store is down for this run
_MAX_SLOWED = 50  # rate signals one batch sits out before it gives up


class Paced(Protocol):
    """What a store's client needs of the run's settings."""

    @property
    def adaptive(self) -> bool: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def timeout(self) -> float: ...
    @property
    def concurrency(self) -> int: ...

    def rate_of(self, provider: str) -> float: ...


class Slow(Exception):
    """A rate signal: every request waits ``pause`` seconds; this one is asked again."""

    def __init__(self, why: str, pause: float) -> None:
        super().__init__(why)
        self.pause = pause


class Refused(Exception):
    """An answer not worth repeating as it is (a 4xx, a body that fails the checks)."""


class BatchRefused(Refused):
    """A batch refused as a whole (a 400): each half is asked on its own, down to the one
    ISRC the store will not take."""


class StoreClient:
    """A store's client; subclasses set ``name`` and ``batch`` and write :meth:`request`
    and :meth:`answer`. Use as an async context manager, inside a running event loop."""

    name = ""
    batch = 1
    slow_pause = 1.0  # seconds every request waits after a rate signal without Retry-After
    least_backoff = 0.0  # seconds, at least, before a transient failure is asked again

    def __init__(
        self,
        settings: Paced,
        *,
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        budget: Budget | None = None,
        rate: float | None = None,
        adaptive: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """``settings``: the run's (its pace for this store, retries, timeout); ``rate``,
        ``adaptive`` and ``timeout``: a store's own, where it knows better."""
        self.budget = budget  # the run's cap and this store's ledger (None: no count)
        self.policy = RetryPolicy(max_retries=settings.max_retries, backoff_cap=8.0)
        self.stats = ClientStats()
        self._rate = settings.rate_of(self.name) if rate is None else rate
        self._adaptive = settings.adaptive if adaptive is None else adaptive
        self._transport: Transport = transport or AiohttpTransport(
            timeout=settings.timeout if timeout is None else timeout,
            connections=settings.concurrency + 2,
        )
        self._sleep = sleep
        self.clock = wall_clock
        self._gate: RateGate | None = None
        self._failed_in_a_row = 0
        self.down: str | None = None  # why the store is taken to be down (None: it is not)

    async def __aenter__(self) -> Any:
        self._gate = RateGate(self._rate, adaptive=self._adaptive, sleep=self._sleep)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    @property
    def gate(self) -> RateGate:
        if self._gate is None:
            raise RuntimeError(f"{type(self).__name__} is not open; use `async with`")
        return self._gate

    # -- what a store says -----------------------------------------------------------

    async def request(self, isrcs: Sequence[str]) -> HttpRequest:
        """The request for ``isrcs`` (valid, normalised, at most ``batch``)."""
        raise NotImplementedError

    def answer(
        self, isrcs: Sequence[str], request: HttpRequest, pages: Sequence[HttpResponse]
    ) -> dict[str, Listing]:
        """A listing for each of ``isrcs`` from the answer's pages (one, unless the store
        pages: see :meth:`next_page`), none a 429 or a 5xx; raises :class:`Slow`,
        :class:`Refused` or ``Transient``."""
        raise NotImplementedError

    # -- asking ----------------------------------------------------------------------

    async def ask(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """A listing for each of ``isrcs``: found, not_found, or error (never raises for
        a failure of the store)."""
        if self.down is not None:
            return self.failed(isrcs, self.down)
        try:
            listings = await self._retrying(isrcs)
        except BatchRefused as exc:
            if len(isrcs) < 2:
                return self.failed(isrcs, f"{self.name}: {exc}")
            first, second = split(isrcs)
            return {**await self.ask(first), **await self.ask(second)}
        except Refused as exc:
            log.debug("%s %s: %s", self.name, ",".join(isrcs), exc)
            return self.failed(isrcs, f"{self.name}: {exc}")
        except (Transient, Slow) as exc:
            self._failed_in_a_row += 1
            why = f"{self.name}: {exc} (gave up after {self.policy.max_retries} retries)"
            if self._failed_in_a_row >= DOWN_AFTER and self.down is None:
                self.down = f"{self.name}: not answering ({exc}); the next run asks again"
                label = catalogues()[self.name].label if self.name in catalogues() else self.name
                log.warning("%s is not answering (%s): its part of this run stops", label, exc)
            return self.failed(isrcs, why)
        self._failed_in_a_row = 0
        return listings

    def failed(self, isrcs: Sequence[str], why: str) -> dict[str, Listing]:
        return {i: Listing.missing(self.name, i, ListingStatus.ERROR, why) for i in isrcs}

    async def _retrying(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        slowed = 0  # rate signals for this batch: they do not count as retries

        def failure(state: RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome is not None else None

        def wait(state: RetryCallState) -> float:
            if isinstance(failure(state), Slow):
                return 0.0  # the gate holds every request until the pause is over
            return max(self.least_backoff, self.policy.backoff(state.attempt_number))

        def stop(state: RetryCallState) -> bool:
            if isinstance(failure(state), Slow):
                return slowed >= _MAX_SLOWED
            return state.attempt_number - slowed > self.policy.max_retries

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((Transient, Slow)),
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
                    return await self._attempt(isrcs)
                except Slow:
                    slowed += 1
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, isrcs: Sequence[str]) -> dict[str, Listing]:
        """One request for ``isrcs`` and the pages that follow it (:meth:`next_page`)."""
        request = await self.request(isrcs)
        pages: list[HttpResponse] = []
        page: HttpRequest | None = request
        while page is not None:
            response, admitted = await self._exchange(page)
            pages.append(response)
            try:
                page = self.next_page(request, response) if len(pages) < MAX_PAGES else None
                if page is None:
                    listings = self.answer(isrcs, request, pages)
            except Slow as slow:
                self._slowed(slow, admitted)
                raise
            self.gate.record_success(admitted)
        return listings

    async def _exchange(self, request: HttpRequest) -> tuple[HttpResponse, float]:
        """Send ``request`` through the gate, counted first; a 429 or a 5xx raised."""
        gate = self.gate
        admitted = await gate.wait()
        if self.budget is not None:  # counted (in the ledger too) before it is sent
            await self.budget.take_or_wait(self.policy.max_wait, self._sleep)
        response = await self.send(request)
        status = response.status
        try:
            if status == 429:
                raise Slow("429", self.pause_for(response))
            if status >= 500 or status == 408:
                self.server_error(response)
                raise Transient(f"HTTP {status}", status=status)
        except Slow as slow:
            self._slowed(slow, admitted)
            raise
        return response, admitted

    def _slowed(self, slow: Slow, admitted: float) -> None:
        """A rate signal heard: every request waits, and the gate learns from it."""
        self.stats.throttled += 1
        self.gate.pause(slow.pause, admitted_at=admitted)

    def next_page(self, request: HttpRequest, response: HttpResponse) -> HttpRequest | None:
        """The request for the answer's next page, if it has one (none by default)."""
        return None

    def pause_for(self, response: HttpResponse) -> float:
        """How long every request waits after this 429: its ``Retry-After``, else
        :attr:`slow_pause`."""
        return parse_retry_after(response.headers, self.slow_pause)

    def server_error(self, response: HttpResponse) -> None:
        """A 5xx that is really a rate signal raises :class:`Slow` here (one store's
        503); by default every 5xx is transient."""

    async def send(self, request: HttpRequest, endpoint: str | None = None) -> HttpResponse:
        """One request, counted in ``stats`` under ``endpoint`` (default: the store's API;
        ``"token"`` is no API request), a failed connection as ``Transient``."""
        self.stats.requests[endpoint or self.name] += 1
        try:
            response = await self._transport.send(request)
        except TransportError as exc:
            self.stats.transport_errors += 1
            raise Transient(f"connection failed ({exc})") from None
        self.stats.statuses[response.status] += 1
        return response


def split(isrcs: Sequence[str]) -> tuple[list[str], list[str]]:
    """A batch in two halves (a store that refuses a batch is asked each half)."""
    half = (len(isrcs) + 1) // 2
    return list(isrcs[:half]), list(isrcs[half:])


def first_error(response: HttpResponse) -> tuple[str, str]:
    """A JSON:API error answer's first error: its detail (200 characters at most) and the
    parameter it names (empty when it names none, or the body is not such an answer)."""
    try:
        errors = json.loads(response.body).get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        detail, source = first.get("detail"), first.get("source")
        parameter = source.get("parameter") if isinstance(source, dict) else None
    except (ValueError, AttributeError):
        return "no detail", ""
    detail = detail[:200] if isinstance(detail, str) else ""
    return detail or "no detail", parameter[:40] if isinstance(parameter, str) else ""


def refusal(response: HttpResponse, batch_parameter: str) -> Refused:
    """A 400's refusal: of the batch (asked again in halves) when it names
    ``batch_parameter``, else of the request as it is (not worth asking again)."""
    detail, parameter = first_error(response)
    kind = BatchRefused if parameter == batch_parameter else Refused
    return kind(f"HTTP 400 ({detail})")


def json_body(response: HttpResponse) -> Any:
    """The parsed JSON body; a body that is not JSON is ``Transient`` (a proxy's page)."""
    try:
        return json.loads(response.body)
    except ValueError:
        raise Transient(f"{response.status} with a body that is not JSON") from None
