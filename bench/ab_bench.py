"""A/B: the same requests against builds of this proxy from several source trees, interleaved.

    git worktree add /tmp/before <commit>
    python bench/ab_bench.py stream /tmp/before .          # added time to first token, 64 chunks back to back
    python bench/ab_bench.py paced /tmp/before .           # added time to first token, chunks 5 ms apart
    python bench/ab_bench.py plain /tmp/before .           # added p50, passthrough model
    python bench/ab_bench.py auto /tmp/before .            # added p50, model=auto, a new prompt each time
    python bench/ab_bench.py auto --gap 20 /tmp/before .   # the same with 20 ms idle before each round

One fake provider (`tests.fakes.openai_provider`, from this tree) and one `python -m proxy serve`
per tree (its own code on PYTHONPATH and as the working directory, SQLite ledger; logs in a temp
dir); each round sends one request to the fake directly and one through every build, so noise hits
them alike. Prints medians (the first 50 rounds are warm-up). A change is worth keeping when it wins
in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proxy_bench import PACED, fake_command, free_port, process, serve_command, wait_http, write_config

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 50


def body(model: str, stream: bool, content: str = "hello") -> bytes:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]}).encode()


def one(conn: http.client.HTTPConnection, mode: str, direct: bool, serial: int) -> float:
    """Seconds to the first content chunk (stream) or to the whole answer (plain, auto)."""
    if mode in ("stream", "paced"):
        model = {"stream": ("stream-64-0", "s64"), "paced": (PACED, "paced")}[mode][not direct]
        started = time.perf_counter()
        headers = {"content-type": "application/json"}
        conn.request("POST", "/v1/chat/completions", body(model, True), headers)
        response = conn.getresponse()
        first = 0.0
        while line := response.readline():
            if not first and b'"content":"w' in line.replace(b" ", b""):
                first = time.perf_counter() - started
        return first
    if mode == "plain":
        return request(conn, "fake-pass" if direct else "pass")
    # a new prompt each time, so the classifier's cache cannot answer
    return request(conn, "fake-pass" if direct else "auto", f"Write a short poem about the sea, variant {serial}")


def request(conn: http.client.HTTPConnection, model: str, content: str = "hello") -> float:
    """Seconds for one non-streamed chat completion."""
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body(model, False, content), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["stream", "paced", "plain", "auto"])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees of this project")
    parser.add_argument("-n", type=int, default=1500, help="rounds")
    parser.add_argument("--gap", type=float, default=0.0, help="ms of idle before each round (light traffic)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smr-ab-"))
    fake_port = free_port()
    config = work / "ab.yaml"
    write_config(config, fake_port)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    with ExitStack() as stack:
        stack.enter_context(process(fake_command(fake_port), {**env, "PYTHONPATH": str(ROOT)}, work / "fake.log"))
        ports: dict[str, int] = {}
        for i, tree in enumerate(args.trees):
            port = free_port()
            tree_env = {**env, "PYTHONPATH": str(tree.resolve()), "SMR_LEDGER_PATH": str(work / f"ledger{i}.sqlite3")}
            stack.enter_context(process(serve_command(config, port), tree_env, work / f"smr{i}.log", tree.resolve()))
            ports[str(tree)] = port
        wait_http(fake_port, "/health", 20)
        for port in ports.values():
            wait_http(port, "/health", 60)
        conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, port in ports.items()}
        direct_conn = http.client.HTTPConnection("127.0.0.1", fake_port, timeout=30)
        times: dict[str, list[float]] = {"direct": [], **{name: [] for name in ports}}
        order = list(conns)
        shuffle = random.Random(7).shuffle
        for serial in range(args.n):
            if args.gap:
                time.sleep(args.gap / 1000)
            times["direct"].append(one(direct_conn, args.mode, True, serial))
            shuffle(order)  # no build always runs right after the same other one (and its leftover work)
            for name in order:
                times[name].append(one(conns[name], args.mode, False, serial))
    direct = statistics.median(times["direct"][WARMUP:])
    print(f"{args.mode}: direct p50 {direct * 1000:.3f} ms ({args.n - WARMUP} rounds)")
    for name in ports:
        p50 = statistics.median(times[name][WARMUP:])
        print(f"  {name}: p50 {p50 * 1000:.3f} ms, added {(p50 - direct) * 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
