from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import looptime
import pytest

from isrc_resolver.cli import main

from .helpers import STORE_VARIABLES, ServerThread


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
        "DEEZER_API_URL",
        *STORE_VARIABLES,
    ):
        monkeypatch.delenv(name, raising=False)

    def apply(server: ServerThread) -> None:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)

    return apply


@pytest.fixture
def virtual_loop() -> Iterator[looptime.LoopTimeEventLoop]:
    """An event loop whose clock jumps to the next timer instead of waiting for it
    (looptime): code that reads time through the loop (aiolimiter, asyncio.sleep, our
    RateGate) runs its timing logic at full speed, and tests assert on exact times."""
    loop = looptime.new_event_loop(start=0)  # enabled from the start
    yield loop
    loop.close()


class Ran(NamedTuple):
    """What one ``isrc-resolve`` run in this process gave: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


Cli = Callable[..., Ran]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``isrc-resolve ARGS`` in this process. A run (or ``plan``) gets ``--rate 1000``
    and ``--deezer-rate 1000`` first: the default ceilings are for the real services, the
    local server takes more, and a test's own, later on the line, wins."""

    def run(*args: str) -> Ran:
        argv = list(args)
        fast = ["--rate", "1000", "--deezer-rate", "1000", "--tidal-rate", "1000"]
        fast += ["--apple-rate", "1000", "--musicbrainz-rate", "1000"]
        if argv[:1] == ["plan"]:
            argv[1:1] = fast
        elif argv[:2] == ["cache", "export"]:
            argv[2:2] = fast
        elif argv[:1] not in (["cache"], ["review"]):
            argv[:0] = fast
        code = main(argv)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


@pytest.fixture(autouse=True)
def own_state_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test has a state folder of its own: the list of this user's caches (which runs
    read to see the account's spending elsewhere) never crosses from one test to another."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL for the session (tests/pgserver.py). Without the server binaries
    the PostgreSQL tests are skipped on a developer's machine, and fail under CI, which
    installs them."""
    import os

    from .pgserver import find_binaries, running

    if find_binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the PostgreSQL server (apt-get install postgresql)")
        pytest.skip("no PostgreSQL server binaries here (apt-get install postgresql)")
    with running() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The URL (password and all) of a new, empty database on the session's server."""
    return str(pg_server.new_database())
