"""Answers by ISRC and variant, with when they were fetched and stored."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..models import Candidate, MatchMethod, Result, Status, Track
from .sql import Database, select_in, upsert

__all__ = ["Results"]

Row = tuple[object, ...]


@functools.lru_cache(maxsize=1024)
def _places(searched: str) -> tuple[str, ...]:
    """A stored ``searched`` list as a tuple; the few distinct ones are shared, not made
    again for each of millions of cached answers."""
    return tuple(searched.split(","))


_COLUMNS = "isrc, status, track, match_count, fetched_at, method, market, searched, conflict"
_LIGHT = _COLUMNS.replace("track,", "NULL,")


_STORED = (
    "status, track, match_count, fetched_at, method, market, searched, stored_at, conflict, "
    "candidates, stored_seq"
)
_PUT = upsert("results", f"isrc, variant, {_STORED}", "isrc, variant")


def _decode(row: tuple[Any, ...]) -> Result | None:
    """A stored answer (the columns of ``_COLUMNS``), or None when it does not read back."""
    isrc, status, track, match_count, fetched_at, method, market, searched, clash = row
    try:
        return Result(
            isrc=isrc,
            status=Status(status),
            track=Track.from_json(json.loads(track)) if track else None,
            match_count=match_count,
            resolved_at=fetched_at,
            method=MatchMethod(method) if method else None,
            market=market,
            searched=_places(searched) if searched else (),
            conflict=None if clash is None else bool(clash),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _candidates_json(result: Result) -> str | None:
    if not result.candidates:
        return None
    tracks = [c.to_json() for c in result.candidates]
    return json.dumps({"reason": result.reason, "tracks": tracks}, ensure_ascii=False)


class Results:
    """The ``results`` table. Writes happen inside the caller's transaction."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def lookup(
        self,
        isrcs: Sequence[str],
        variant: str,
        *,
        max_age: float,
        not_found_max_age: float,
        stale: dict[str, Result] | None = None,
        stored_since: int | None = None,
        light: bool = False,
    ) -> dict[str, Result]:
        """Fresh cached results for those of ``isrcs`` that have one; the ones past their
        age go into ``stale`` when it is given (to be kept if they cannot be refreshed).
        ``stored_since``: only answers committed after that mark of the cache's commits
        (:func:`.sql.mark`: another process's, since the caller read the cache).
        ``light``: without their tracks (no JSON read): enough to tell what to ask."""
        now = self._clock()
        found_cutoff, miss_cutoff = now - max_age, now - not_found_max_age
        out: dict[str, Result] = {}
        columns = _LIGHT if light else _COLUMNS
        since = "" if stored_since is None else "AND coalesce(stored_seq, 0) > ? "
        rows = select_in(
            self._db,
            f"SELECT {columns} FROM results WHERE variant = ? {since}AND isrc IN ({{}})",
            (variant,) if stored_since is None else (variant, stored_since),
            sorted(isrcs),  # in the table's order: fewer pages read, each once
        )
        for row in rows:
            fetched_at, status = row[4], row[1]
            cutoff = found_cutoff if status == Status.FOUND else miss_cutoff
            if fetched_at < cutoff and stale is None:
                continue
            result = _decode(row)
            if result is None:
                continue  # an entry that does not read back is as good as none: ask again
            if fetched_at >= cutoff:
                out[result.isrc] = result
            elif stale is not None:
                stale[result.isrc] = result
        return out

    def put(self, results: Sequence[Result], variant: str, now: float, seq: int) -> None:
        """Save the settled ones of ``results`` (found / not found), as commit ``seq``."""
        rows = [
            (
                r.isrc,
                variant,
                r.status.value,
                json.dumps(r.track.to_json(), ensure_ascii=False) if r.track else None,
                r.match_count,
                r.resolved_at or now,
                r.method.value if r.method else None,
                r.market,
                ",".join(r.searched) or None,
                now,
                None if r.conflict is None else int(r.conflict),
                _candidates_json(r),
                seq,
            )
            for r in results
            if r.status in (Status.FOUND, Status.NOT_FOUND)
        ]
        if rows:
            self._db.executemany(_PUT, rows)

    def candidates(
        self, isrcs: Sequence[str], variant: str | None
    ) -> dict[str, tuple[tuple[Candidate, ...], str | None]]:
        """The candidates kept with the answers of those of ``isrcs`` that have them, and
        why the chosen one won (answers stored before candidates were kept have none).
        ``variant`` None: the latest answer of any variant (a run's settings unknown)."""
        out: dict[str, tuple[tuple[Candidate, ...], str | None]] = {}
        which = "" if variant is None else "variant = ? AND "
        rows = select_in(
            self._db,
            f"SELECT isrc, candidates FROM results WHERE {which}"
            "candidates IS NOT NULL AND isrc IN ({}) ORDER BY stored_at",
            () if variant is None else (variant,),
            isrcs,
        )
        for isrc, text in rows:
            try:
                data = json.loads(text)
                kept = tuple(Candidate.from_json(c) for c in data["tracks"])
                reason = data.get("reason")
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: as if none were kept
            out[isrc] = (kept, reason if isinstance(reason, str) else None)
        return out

    def scan(self, variant: str, size: int = 20_000) -> Iterator[list[Result]]:
        """Every answer of ``variant``, in ISRC order, ``size`` at a time (a page after
        the last ISRC read each time: memory does not grow with the table, on either
        backend)."""
        after = ""
        while True:
            batch = self._db.execute(
                f"SELECT {_COLUMNS} FROM results WHERE variant = ? AND isrc > ? "
                "ORDER BY isrc LIMIT ?",
                (variant, after, size),
            ).fetchall()
            if not batch:
                return
            after = batch[-1][0]
            yield [r for r in map(_decode, batch) if r is not None]

    def answered_since(self, isrcs: Sequence[str], variant: str, since: int) -> set[str]:
        """Those of ``isrcs`` with an answer committed after the mark ``since``."""
        return {
            isrc
            for (isrc,) in select_in(
                self._db,
                "SELECT isrc FROM results WHERE variant = ? AND stored_seq > ? AND isrc IN ({})",
                (variant, since),
                isrcs,
            )
        }

    def by_age(self, now: float) -> dict[str, dict[str, int]]:
        """Answers by status and age: within a day, a week, 30 days, or older."""
        rows = self._db.execute(
            "SELECT status, CASE WHEN fetched_at >= ? THEN '1d' WHEN fetched_at >= ? THEN '7d' "
            "WHEN fetched_at >= ? THEN '30d' ELSE 'older' END, COUNT(*) FROM results "
            "GROUP BY 1, 2",
            (now - 86_400, now - 7 * 86_400, now - 30 * 86_400),
        )
        out: dict[str, dict[str, int]] = {}
        for status, age, count in rows:
            out.setdefault(status, {})[age] = count
        return out

    def counts(self) -> tuple[dict[str, int], float | None, float | None]:
        """Answers by status, and the oldest and newest answer's time."""
        counts = dict(self._db.execute("SELECT status, COUNT(*) FROM results GROUP BY status"))
        oldest, newest = self._db.execute(
            "SELECT MIN(fetched_at), MAX(fetched_at) FROM results"
        ).fetchone()
        return counts, oldest, newest
