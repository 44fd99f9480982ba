"""Where a request's time goes, client and proxy on one clock: `python bench/ttft_breakdown.py`.

Starts the fake provider and `smr serve`'s app wrapped in a timing ASGI layer (nothing of the
proxy is changed), then sends requests one at a time, each after one to the fake directly as
ab_bench does, for three kinds of answer: plain (`pass`), a 64-chunk stream sent back to back
(`s64`), and a paced stream (`paced`, chunks 5 ms apart). `time.perf_counter` is CLOCK_MONOTONIC on
Linux, the same clock in both processes, so the medians split one request into: the client's
send, until the app is called, the app until its first body bytes are written, from there until
the client has the status line, and until the client has the first content.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ab_bench import body
from bench.proxy_bench import PACED, PY, fake_command, free_port, process, wait_http, write_config

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"plain": ("fake-pass", "pass", False), "burst": ("stream-64-0", "s64", True), "paced": (PACED, "paced", True)}
WARMUP = 30
COLUMNS = (("send", 6), ("to app", 7), ("app", 6), ("to head", 8), ("to first", 9), ("total", 7), ("direct", 7))


def serve(config: Path, port: int, log: Path) -> None:
    """The proxy's app behind a layer that logs, per chat request, when it was called and first wrote a body."""
    import uvicorn

    from proxy import config as configuration
    from proxy import serving
    from proxy.app import create_app

    inner = create_app(configuration.load(config))
    out = log.open("a")

    async def timed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await inner(scope, receive, send)
            return
        called = time.perf_counter()
        wrote: list[float] = []

        async def send_timed(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not wrote:
                wrote.append(time.perf_counter())

        await inner(scope, receive, send_timed)
        out.write(json.dumps({"called": called, "wrote": wrote[0] if wrote else called}) + "\n")
        out.flush()

    uvicorn.Server(serving.config(timed, "127.0.0.1", port, log_level="warning")).run()  # uvloop, as smr serve


def first_content(conn: http.client.HTTPConnection, model: str, stream: bool) -> tuple[float, float, float, float]:
    """(started, request sent, status line read, first content read), on the shared clock."""
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body(model, stream), {"content-type": "application/json"})
    sent = time.perf_counter()
    response = conn.getresponse()
    headed = time.perf_counter()
    if not stream:
        response.read()
        return started, sent, headed, time.perf_counter()
    first = 0.0
    while line := response.readline():
        if not first and b'"content":"w' in line.replace(b" ", b""):
            first = time.perf_counter()
    return started, sent, headed, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="requests of each kind")
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), Path(args.serve[2]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="smr-ttft-"))
    fake_port, port = free_port(), free_port()
    config = work / "smr.yaml"
    write_config(config, fake_port)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"PYTHONPATH": str(ROOT), "SMR_LEDGER_PATH": str(work / "ledger.sqlite3")}
    print(
        f"{'':<8} {'send':>6} {'to app':>7} {'app':>6} {'to head':>8} {'to first':>9} {'total':>7} {'direct':>7}  (ms)"
    )
    with ExitStack() as stack:
        stack.enter_context(process(fake_command(fake_port), env, work / "fake.log"))
        serve_cmd = [PY, str(Path(__file__).resolve()), "--serve", str(config), str(port), str(work / "app.jsonl")]
        stack.enter_context(process(serve_cmd, env, work / "smr.log"))
        wait_http(fake_port, "/health", 20)
        wait_http(port, "/health", 60)
        direct = http.client.HTTPConnection("127.0.0.1", fake_port, timeout=30)
        proxied = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for kind, (upstream, model, stream) in KINDS.items():
            log = work / "app.jsonl"
            log.write_text("")
            client, alone = [], []
            for _ in range(args.n + WARMUP):
                started, _, _, first = first_content(direct, upstream, stream)
                alone.append(first - started)
                client.append(first_content(proxied, model, stream))
            time.sleep(0.2)
            app = [json.loads(line) for line in log.read_text().splitlines()]
            parts: dict[str, list[float]] = {}
            for (started, sent, headed, first), seen in list(zip(client, app, strict=True))[WARMUP:]:
                for name, value in (
                    ("send", sent - started),
                    ("to app", seen["called"] - sent),
                    ("app", seen["wrote"] - seen["called"]),
                    ("to head", headed - seen["wrote"]),
                    ("to first", first - headed),
                    ("total", first - started),
                ):
                    parts.setdefault(name, []).append(value * 1000)
            medians = [statistics.median(values) for values in parts.values()]
            medians.append(statistics.median(alone[WARMUP:]) * 1000)
            print(f"{kind:<8} " + " ".join(f"{m:>{w}.3f}" for m, (_, w) in zip(medians, COLUMNS, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
