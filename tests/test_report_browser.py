"""The HTML report in a real browser: headless Chromium, driven over the DevTools protocol
(a WebSocket on 127.0.0.1), opens the file a run wrote and is asked what it saw.

Chromium comes from the system's packages (``.ci/run`` installs it). Where there is none
the test says so and skips; under CI it fails instead, so CI always runs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .conftest import Cli
from .helpers import ServerThread, isrcs, write_csv
from .test_review import hostile_fixtures

Env = Callable[[ServerThread], None]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(
            "no Chromium on this CI machine: .ci/run installs it (apt-get install chromium)"
        )
    pytest.skip(f"no headless browser here (looked for {', '.join(BROWSERS)}); CI installs one")


class Page:
    """One browser tab over the DevTools protocol: commands, and every event kept."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._answers:
                self._answers.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        answer = asyncio.get_running_loop().create_future()
        self._answers[self._next] = answer
        await self.ws.send_json({"id": self._next, "method": method, "params": params})
        data = await asyncio.wait_for(answer, 30)
        assert "error" not in data, data
        return data["result"]  # type: ignore[no-any-return]

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def named(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == method]

    async def load(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        for _ in range(300):
            if any(e.get("method") == "Page.loadEventFired" for e in self.events):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{url} did not load")
        await asyncio.sleep(0.5)  # late console messages and requests, if any

    def close(self) -> None:
        self._reader.cancel()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """A headless Chromium with a fresh profile, listening on 127.0.0.1 only."""
    binary = browser()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            binary, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", "--window-size=1200,1600", "about:blank",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and port_file.read_text().strip():
                    break
                await asyncio.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    page = Page(ws)
                    for domain in ("Page", "Runtime", "Network", "Log"):
                        await page.send(f"{domain}.enable")
                    try:
                        yield page
                    finally:
                        page.close()
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def png_pixels(png: bytes) -> bytes:
    """The decompressed image data of a PNG (its scanlines, filter bytes included)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, data = 8, b""
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        kind = png[at + 4 : at + 8]
        if kind == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    return zlib.decompress(data)


async def screenshot(page: Page) -> bytes:
    shot = await page.send("Page.captureScreenshot", format="png")
    return base64.b64decode(shot["data"])


def test_the_report_renders_in_chromium_with_nothing_leaving_the_file(
    spotify_thread: Callable[..., ServerThread], env: Env, cli: Cli, tmp_path: Path
) -> None:
    browser()  # skips (or fails under CI) before any work when there is none
    server = spotify_thread(fixtures=hostile_fixtures(tmp_path / "fixtures.json"), conflicting=0.3)
    env(server)
    rows = [{"isrc": "QZHOS2400001", "title": "Other", "artist": "Someone"}]
    rows += [{"isrc": i, "title": "", "artist": ""} for i in isrcs(30)]
    write_csv(tmp_path / "in.csv", rows)
    args = ["in.csv", "-o", "out.csv", "--cache", "c.sqlite", "--report", "report.html"]
    assert cli(*args, "--daily-quota", "500").code == 0
    report = (tmp_path / "report.html").resolve()

    async def look() -> dict[str, Any]:
        async with chromium() as page:
            await page.load("about:blank")
            blank = await screenshot(page)
            page.events.clear()
            await page.load(report.as_uri())
            return {
                "shot": await screenshot(page),
                "blank": blank,
                "bars": await page.evaluate("document.querySelectorAll('svg rect.bar').length"),
                "charts": await page.evaluate("document.querySelectorAll('figure svg').length"),
                "scripts": await page.evaluate("document.scripts.length"),
                "text": await page.evaluate("document.body.innerText"),
                "title": await page.evaluate("document.title"),
                "links": await page.evaluate("[...document.links].map(a => a.href)"),
                "requests": [p["request"]["url"] for p in page.named("Network.requestWillBeSent")],
                "console": [
                    p for p in page.named("Runtime.consoleAPICalled") if p["type"] == "error"
                ],
                "exceptions": page.named("Runtime.exceptionThrown"),
                "logged": [
                    p for p in page.named("Log.entryAdded") if p["entry"]["level"] == "error"
                ],
                "dialogs": page.named("Page.javascriptDialogOpening"),
            }

    seen = asyncio.run(look())
    # It renders: a screenshot with far more in it than a blank page's.
    pixels, blank = png_pixels(seen["shot"]), png_pixels(seen["blank"])
    assert len(set(pixels)) > 40 and len(set(pixels)) > 4 * len(set(blank))
    assert len(seen["shot"]) > 5 * len(seen["blank"])
    assert seen["title"] == "isrc-resolve: out.csv"
    # Its charts are there: four of rows and matches, one of the budget; bars drawn.
    assert seen["charts"] == 5 and seen["bars"] >= 10
    # No script, no error, no dialog; nothing requested but the file itself.
    assert seen["scripts"] == 0
    assert seen["console"] == [] and seen["exceptions"] == [] and seen["logged"] == []
    assert seen["dialogs"] == []
    assert seen["requests"] == [report.as_uri()]
    assert all(link.startswith("https://open.spotify.com/track/") for link in seen["links"])
    # A track named <script>alert(1)</script> is shown as that text.
    assert "<script>alert(1)</script>" in seen["text"]
    assert "isrc_conflict" in seen["text"] and "found" in seen["text"]
