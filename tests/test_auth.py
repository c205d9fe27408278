import asyncio
import os
import stat
from pathlib import Path

from isrc_resolver._logging import Secret
from isrc_resolver.spotify.auth import AccessToken, TokenProvider, TokenStore


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingFetcher:
    def __init__(self, clock: Clock, lifetime: float = 3600) -> None:
        self.calls = 0
        self.clock = clock
        self.lifetime = lifetime

    async def __call__(self) -> AccessToken:
        self.calls += 1
        await asyncio.sleep(0)  # one turn of the loop: every other caller piles up behind it
        return AccessToken(f"token-{self.calls}", self.clock() + self.lifetime)


async def test_fifty_concurrent_callers_share_one_token_request() -> None:
    clock = Clock()
    fetch = CountingFetcher(clock)
    provider = TokenProvider(fetch, clock=clock)
    tokens = await asyncio.gather(*(provider.get() for _ in range(50)))
    assert fetch.calls == 1
    assert set(tokens) == {"token-1"}


async def test_token_is_renewed_shortly_before_it_expires() -> None:
    clock = Clock()
    fetch = CountingFetcher(clock)
    provider = TokenProvider(fetch, refresh_margin=60, clock=clock)
    assert await provider.get() == "token-1"
    clock.now += 3600 - 61
    assert await provider.get() == "token-1"
    clock.now += 2  # now inside the 60 s margin
    assert await provider.get() == "token-2"
    assert fetch.calls == 2


async def test_a_burst_of_401s_on_one_token_costs_one_renewal() -> None:
    clock = Clock()
    fetch = CountingFetcher(clock)
    provider = TokenProvider(fetch, clock=clock)
    old = await provider.get()
    for _ in range(10):
        provider.invalidate(old)  # every worker saw a 401 with the old token
        assert await provider.get() == "token-2"
    assert fetch.calls == 2


SECRET_A = Secret("secret-for-a-0123456789")
SECRET_B = Secret("secret-for-b-0123456789")


async def test_token_file_is_private_and_reused_until_expiry(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "sub" / "tokens.json"
    fetch = CountingFetcher(clock)
    first = TokenProvider(
        fetch, store=TokenStore(path, "client-a", SECRET_A, clock=clock), clock=clock
    )
    assert await first.get() == "token-1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # The next run (a new provider) reuses the stored token: no fetch.
    second = TokenProvider(
        fetch, store=TokenStore(path, "client-a", SECRET_A, clock=clock), clock=clock
    )
    assert await second.get() == "token-1"
    assert fetch.calls == 1

    # Another client id does not see it.
    other = TokenProvider(
        fetch, store=TokenStore(path, "client-b", SECRET_B, clock=clock), clock=clock
    )
    assert await other.get() == "token-2"

    # A rejected token is dropped from the file too.
    second.invalidate("token-1")
    assert TokenStore(path, "client-a", SECRET_A, clock=clock).load() is None

    # The same id with another secret does not see a token either: a wrong secret is found
    # out by asking, not hidden behind a stored token. The secret is not in the file.
    fourth = TokenProvider(
        fetch, store=TokenStore(path, "client-b", SECRET_A, clock=clock), clock=clock
    )
    assert await fourth.get() == "token-3"
    assert "secret-for-a" not in path.read_text() and "secret-for-b" not in path.read_text()

    # An expired one is not loaded.
    clock.now += 7200
    assert TokenStore(path, "client-b", SECRET_B, clock=clock).load() is None


def test_secrets_do_not_show_themselves() -> None:
    secret = Secret("s3cr3t-value")
    token = AccessToken("BQ-very-secret-token", 0)
    for text in (repr(secret), str(secret), repr(token), f"{secret}", f"{token!r}"):
        assert "s3cr3t" not in text and "very-secret" not in text
    assert secret.reveal() == "s3cr3t-value"


def test_log_lines_mask_every_registered_secret(capsys: object) -> None:
    import io
    import logging

    from isrc_resolver._logging import configure_logging, register_secret

    stream = io.StringIO()
    logger = configure_logging(verbose=True, quiet=False, json_format=False)
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    register_secret("BQ-a-token-long-enough-to-be-real")
    register_secret("short")  # not a real credential: never masked
    logger.debug("sent %s with %s", "BQ-a-token-long-enough-to-be-real", "short")
    try:
        raise ValueError("failed with BQ-a-token-long-enough-to-be-real")
    except ValueError:
        logger.exception("boom")
    text = stream.getvalue()
    assert "BQ-a-token" not in text
    assert "sent *** with short" in text and "failed with ***" in text
    logging.getLogger("isrc_resolver").handlers.clear()
