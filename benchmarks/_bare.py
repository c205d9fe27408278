"""The baseline for the overhead figure: a bare aiohttp loop, one GET per ISRC.

``python benchmarks/_bare.py BASE_URL INPUT.csv CONCURRENCY``: reads the ISRCs of a
one-column-per-row CSV (the ``isrc`` column), asks the local server for each with a
semaphore and no retries, and exits. run.py times the whole process, exec to exit, just as
it times the CLI, so both pay for interpreter start-up and imports.
"""

import asyncio
import csv
import sys

import aiohttp


async def main(base: str, values: list[str], concurrency: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": "demo-client-id",
            "client_secret": "demo-client-secret",
        }
        async with http.post(f"{base}/api/token", data=form) as resp:
            token = (await resp.json())["access_token"]
        gate = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {token}"}

        async def one(isrc: str) -> None:
            params = {"q": f"isrc:{isrc}", "type": "track", "limit": "10"}
            async with gate, http.get(f"{base}/v1/search", params=params, headers=headers) as r:
                await r.json()

        await asyncio.gather(*(one(i) for i in values))


if __name__ == "__main__":
    base, path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, newline="", encoding="utf-8") as fh:
        isrcs = [row["isrc"] for row in csv.DictReader(fh)]
    asyncio.run(main(base, isrcs, concurrency))
