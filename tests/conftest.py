from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .helpers import ServerThread


@pytest.fixture
def spotify_thread() -> Iterator[Callable[..., ServerThread]]:
    """Start local Spotify servers on background threads; all are stopped afterwards."""
    started: list[ServerThread] = []

    def start(**config: Any) -> ServerThread:
        server = ServerThread(**config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def spotify(spotify_thread: Callable[..., ServerThread]) -> ServerThread:
    return spotify_thread()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Callable[[ServerThread], None]:
    """Point the CLI at a server through the environment; run in an empty folder."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "SPOTIFY_CLIENT_ID",
        "SPOTIFY_CLIENT_SECRET",
        "SPOTIFY_API_URL",
        "SPOTIFY_TOKEN_URL",
    ):
        monkeypatch.delenv(name, raising=False)

    def apply(server: ServerThread) -> None:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)

    return apply


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer instead of waiting for it.

    Code that reads time through the loop (aiolimiter, asyncio.sleep, our RateGate) runs
    its timing logic at full speed, and tests can assert on exact virtual times.
    """

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:  # type: ignore[override]
        if not self._ready and self._scheduled:  # type: ignore[attr-defined]
            when = self._scheduled[0]._when  # type: ignore[attr-defined]
            # Step a microsecond past the timer, as a real clock would: aiolimiter
            # re-arms its timer when float rounding leaves it a hair early, and a clock
            # that lands exactly on the timer would spin there forever.
            self._virtual_now = max(self._virtual_now, when) + 1e-6
        super()._run_once()  # type: ignore[misc]


@pytest.fixture
def virtual_loop() -> Iterator[VirtualClockLoop]:
    loop = VirtualClockLoop()
    yield loop
    loop.close()
