"""Client time of one upstream call: the proxy's `Upstream` on each pool, against the raw clients.

    .venv/bin/python bench/upstream_bench.py [-n 3000]

Against the fake provider on 127.0.0.1, sequentially, in one process with uvloop (as `smr serve`
runs): a plain call (send, read the whole answer) and a stream opened to its status line, through
`Upstream("aiohttp")` (the default), `Upstream("httpx")`, and aiohttp's and httpx's own clients
with nothing of ours around them. Medians in µs; the difference to the raw aiohttp client is what
our layer costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import httpx

from adapters.base import HttpRequest
from bench.proxy_bench import free_port, wait_http
from proxy.upstream import Upstream

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {"content-type": "application/json", "authorization": "Bearer x"}


def payload(model: str, stream: bool) -> bytes:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]}).encode()


async def measure(url: str, rounds: int) -> dict[str, dict[str, float]]:
    plain, streamed = payload("fake-pass", False), payload("stream-64-0", True)
    ours = {name: Upstream(name) for name in ("aiohttp", "httpx")}  # type: ignore[arg-type]
    session = aiohttp.ClientSession(auto_decompress=False)
    client = httpx.AsyncClient()
    times: dict[str, dict[str, list[float]]] = {}

    def note(name: str, kind: str, started: float) -> None:
        times.setdefault(name, {}).setdefault(kind, []).append((time.perf_counter() - started) * 1e6)

    try:
        for _ in range(rounds):
            for name, upstream in ours.items():
                started = time.perf_counter()
                await upstream.send(HttpRequest("POST", url, HEADERS, plain), 10)
                note(f"Upstream({name})", "plain", started)
                started = time.perf_counter()
                stream = await upstream.open_stream(HttpRequest("POST", url, HEADERS, streamed), 10)
                note(f"Upstream({name})", "open stream", started)
                async for _chunk in stream.chunks():
                    pass
                await stream.aclose()
            started = time.perf_counter()
            async with session.post(url, data=plain, headers=HEADERS) as answer:
                await answer.read()
            note("aiohttp alone", "plain", started)
            started = time.perf_counter()
            answer = await session.post(url, data=streamed, headers=HEADERS)
            note("aiohttp alone", "open stream", started)
            async for _chunk in answer.content.iter_any():
                pass
            answer.release()
            started = time.perf_counter()
            await client.post(url, content=plain, headers=HEADERS)
            note("httpx alone", "plain", started)
            started = time.perf_counter()
            async with client.stream("POST", url, content=streamed, headers=HEADERS) as response:
                note("httpx alone", "open stream", started)
                async for _chunk in response.aiter_raw():
                    pass
    finally:
        for upstream in ours.values():
            await upstream.aclose()
        await session.close()
        await client.aclose()
    skip = min(200, rounds // 5)
    return {name: {kind: statistics.median(v[skip:]) for kind, v in kinds.items()} for name, kinds in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="rounds")
    args = parser.parse_args()
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_provider", "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        wait_http(port, "/health", 20)
        import uvloop

        results = uvloop.run(measure(f"http://127.0.0.1:{port}/v1/chat/completions", args.n))
    finally:
        fake.terminate()
        fake.wait(10)
    print(f"{'client':<18} {'plain µs':>9} {'open stream µs':>15}")
    for name, kinds in results.items():
        print(f"{name:<18} {kinds['plain']:9.0f} {kinds['open stream']:15.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
