"""The stages on their own, with plain values: the plan's triage of cached answers, the
fetch rounds over strategies that answer from a table, and the rate learner's arithmetic.
No server, no cache file, no loop clock: each is driven through its seam."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

import pytest

from isrc_resolver import Result, Settings, Status
from isrc_resolver.http.ratelimit import SETTLING, RateLearner, window_of
from isrc_resolver.matching import Hint, Hints
from isrc_resolver.models import MatchMethod
from isrc_resolver.pipeline.fetch import Fetcher
from isrc_resolver.pipeline.plan import triage
from isrc_resolver.pipeline.workers import RunControl, Workers

KR = "KRA382400001"  # a Korean ISRC: its own market is KR
US = "USRC17607839"


def settings(**options: object) -> Settings:
    return Settings.build("id", "secret", environ={}, cache=None, **options)  # type: ignore[arg-type]


# -- the plan's triage of cached answers --------------------------------------------------


def test_triage_keeps_answers_resumes_misses_with_markets_left_and_reasks_the_unwanted() -> None:
    s = settings(fallback_markets="isrc", fallback_search="verified")
    found = Result(US, Status.FOUND, method=MatchMethod.ISRC, searched=("US",))
    searched_everywhere = Result(KR, Status.NOT_FOUND, searched=("US", "KR"))
    only_first = Result("KRA382400002", Status.NOT_FOUND, searched=("US",))
    fuzzy = Result("GBAYE0601498", Status.FOUND, method=MatchMethod.TITLE_ARTIST_FUZZY)
    cached = {r.isrc: r for r in (found, searched_everywhere, only_first, fuzzy)}
    stale: dict[str, Result] = {}
    usable, partial = triage(cached, stale, s)
    assert usable == [found, searched_everywhere]
    assert partial == [only_first]  # KR is left to search
    assert stale == {fuzzy.isrc: fuzzy}  # verified runs do not take a fuzzy answer


def test_triage_takes_a_fuzzy_answer_when_the_run_is_fuzzy_too() -> None:
    fuzzy = Result("GBAYE0601498", Status.FOUND, method=MatchMethod.TITLE_ARTIST_FUZZY)
    stale: dict[str, Result] = {}
    usable, partial = triage({fuzzy.isrc: fuzzy}, stale, settings(fallback_search="fuzzy"))
    assert (usable, partial, stale) == ([fuzzy], [], {})


def test_triage_with_no_fallback_markets_resumes_nothing() -> None:
    miss = Result(KR, Status.NOT_FOUND, searched=("US",))
    usable, partial = triage({KR: miss}, {}, settings(fallback_markets="none"))
    assert (usable, partial) == ([miss], [])


# -- the fetch rounds ---------------------------------------------------------------------


class Table:
    """Market and title/artist searches that answer from a table, and count calls."""

    def __init__(self, in_market: Mapping[str, str], by_title: Mapping[str, str]) -> None:
        self.in_market = in_market  # ISRC -> the only market it is found in
        self.by_title = by_title  # ISRC -> the title a title/artist search finds it by
        self.calls: list[tuple[str, str]] = []

    async def search(self, isrc: str, duration_ms: int | None = None) -> Result:
        self.calls.append(("first", isrc))
        return self._look(Result(isrc, Status.NOT_FOUND), "US")

    async def fallback(
        self,
        miss: Result,
        duration_ms: int | None = None,
        progress: Callable[[Result], Awaitable[None]] | None = None,
    ) -> Result:
        self.calls.append(("fallback", miss.isrc))
        return self._look(miss, miss.isrc[:2])

    def needs_fallback(self, result: Result) -> bool:
        return result.isrc[:2] not in result.searched

    def _look(self, miss: Result, market: str) -> Result:
        searched = (*miss.searched, market)
        if self.in_market.get(miss.isrc) == market:
            method = MatchMethod.ISRC if market == "US" else MatchMethod.ISRC_MARKET
            return Result(miss.isrc, Status.FOUND, method=method, market=market, searched=searched)
        return replace(miss, searched=searched)

    async def titles(self, miss: Result, hint: Hint) -> Result:
        self.calls.append(("title", miss.isrc))
        searched = (*miss.searched, "title_artist")
        if self.by_title.get(miss.isrc) == hint.title:
            return Result(miss.isrc, Status.FOUND, method=MatchMethod.TITLE_ARTIST)
        return replace(miss, searched=searched)


class Titles:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def search(self, miss: Result, hint: Hint) -> Result:
        return await self.table.titles(miss, hint)


async def run_rounds(table: Table, isrcs: list[str], hints: Mapping[str, Hint]) -> list[Result]:
    s = settings()
    out: list[Result] = []

    async def read(wanted: list[str]) -> Mapping[str, Hint]:
        return {isrc: hints[isrc] for isrc in wanted if isrc in hints}

    fetcher = Fetcher(
        Workers(RunControl(), concurrency=4, cache=None),
        table,
        None,
        s,
        clock=lambda: 1_700_000_000.0,
        titles=Titles(table),
    )
    await fetcher.fetch(isrcs, out.append, hints=Hints(read, titles=True))
    return out


async def test_each_round_asks_only_what_the_round_before_missed() -> None:
    gb, kr, lost, nowhere = "GBAYE0601498", KR, "KRA382400003", "KRA382400004"
    table = Table({US: "US", gb: "GB", kr: "KR"}, {lost: "Found By Title"})
    hints = {lost: Hint("Found By Title", "Someone"), nowhere: Hint("Wrong Title", "Someone")}
    results = {r.isrc: r for r in await run_rounds(table, [US, gb, kr, lost, nowhere], hints)}

    assert sorted(isrc for kind, isrc in table.calls if kind == "first") == sorted(
        [US, gb, kr, lost, nowhere]
    )
    assert sorted(isrc for kind, isrc in table.calls if kind == "fallback") == sorted(
        [gb, kr, lost, nowhere]
    )
    assert sorted(isrc for kind, isrc in table.calls if kind == "title") == sorted([lost, nowhere])
    assert results[US].method is MatchMethod.ISRC
    assert (results[kr].method, results[kr].market) == (MatchMethod.ISRC_MARKET, "KR")
    assert results[lost].method is MatchMethod.TITLE_ARTIST
    assert results[nowhere].status is Status.NOT_FOUND
    assert results[nowhere].searched == ("US", "KR", "title_artist")
    # Every answer got the time it was settled at.
    assert {r.resolved_at for r in results.values()} == {1_700_000_000.0}


async def test_without_a_title_for_a_miss_the_title_round_asks_nothing() -> None:
    table = Table({}, {})
    results = await run_rounds(table, [KR], hints={})
    assert [kind for kind, _ in table.calls] == ["first", "fallback"]
    assert [(r.status, r.searched) for r in results] == [(Status.NOT_FOUND, ("US", "KR"))]


# -- the rate learner ---------------------------------------------------------------------


def test_the_learner_estimates_the_window_from_the_first_429() -> None:
    learner = RateLearner(200)
    assert learner.admitting(0.0) == 200  # the first phase begins
    for n in range(100):
        learner.accepted(n / 200)  # 100 answered in half a second
    learner.throttled(0.5, retry_after=2)
    paced = learner.admitting(2.5)  # the pause is over
    assert learner.window == pytest.approx(0.5 + 1.5)
    assert learner.rate == pytest.approx(100 / 2.0 * 0.99)
    # The first window after the pause is paced a little under it (see SETTLING) ...
    assert paced == pytest.approx(learner.rate * SETTLING)
    assert learner.admitting(2.5 + 1.9) == pytest.approx(learner.rate * SETTLING)
    assert learner.admitting(2.5 + 2.1) == pytest.approx(learner.rate)  # ... then at it


def test_the_learner_counts_sending_time_up_to_the_refused_request() -> None:
    """The 429 comes back a round trip after its request left; the phase's sending time
    ends when it left, so the latency does not make the estimate low."""
    learner = RateLearner(200)
    learner.admitting(0.0)
    for n in range(100):
        learner.accepted(n / 200)
    learner.throttled(0.53, retry_after=2, admitted_at=0.5)  # 30 ms there and back
    learner.admitting(2.53)
    rate = learner.rate
    assert learner.window == pytest.approx(0.5 + 1.5)
    assert rate == pytest.approx(100 / 2.0 * 0.99)
    late = RateLearner(200)  # without it, a slow round trip counts as sending time
    late.admitting(0.0)
    for n in range(100):
        late.accepted(n / 200)
    late.throttled(1.0, retry_after=2)  # 500 ms there and back
    late.admitting(3.0)
    assert late.window == pytest.approx(3.0) and late.rate < rate


def test_the_learner_leaves_room_for_requests_that_arrive_bunched() -> None:
    """Round trips that spread over 40 ms (the way there about half of it) leave 20 ms
    of a 2-second window's room: at 50 a second, the one request that bunching adds."""
    even, uneven = RateLearner(200), RateLearner(200)
    for learner, spread in ((even, 0.0), (uneven, 0.04)):
        learner.admitting(0.0)
        for n in range(100):
            learner.accepted(n / 200, n / 200 + 0.03 + spread * (n % 2))
        learner.throttled(0.5, retry_after=2, admitted_at=0.5)
        learner.admitting(2.5)
    assert even.rate == pytest.approx(50 * 0.99)
    assert uneven.rate == pytest.approx(50 * 0.99 * 2 / 2.02)


def test_the_window_is_the_whole_number_of_seconds_the_429_allows() -> None:
    """Retry-After is rounded up: a 2-second window refused 0.45 s or 0.55 s into a burst
    says 2 either way, and is learned as 2 s (not 1.95 s or 2.05 s)."""
    assert window_of(0.45, 2) == window_of(0.55, 2) == 2.0
    assert window_of(3.2, 27) == 30.0  # Spotify's 30-second window
    assert window_of(0.1, 0.5) == pytest.approx(0.35)  # under a second: the middle


def test_the_learner_halves_when_a_phase_shows_too_little() -> None:
    learner = RateLearner(100)
    learner.admitting(0.0)
    learner.accepted(0.0)
    learner.throttled(0.1, retry_after=1)
    learner.admitting(1.1)
    assert learner.rate == pytest.approx(50)


def test_the_learner_holds_then_probes_one_percent_a_window() -> None:
    learner = RateLearner(200, hold_windows=5, cap_windows=0)
    learner.admitting(0.0)
    for n in range(100):
        learner.accepted(n / 200)
    learner.throttled(0.5, retry_after=2)
    learner.admitting(2.5)
    learned = learner.rate
    assert learner.admitting(2.5 + 4 * 2.0) == learned  # still holding (5 windows of 2 s)
    assert learner.admitting(2.5 + 5 * 2.0) == pytest.approx(learned * 1.01)
    assert learner.admitting(2.5 + 5 * 2.0 + 1.0) == pytest.approx(learned * 1.01)  # < window
    assert learner.admitting(2.5 + 6 * 2.0) == pytest.approx(learned * 1.01**2)


def test_a_fixed_learner_never_changes_its_rate() -> None:
    learner = RateLearner(100, adaptive=False)
    learner.admitting(0.0)
    learner.throttled(0.1, retry_after=5)
    assert learner.admitting(5.1) == 100
    assert learner.window is None
