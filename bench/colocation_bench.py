"""Does running the classifier slow the same process's passthrough requests?

    python bench/colocation_bench.py [--gap 0.015] [-n 800]

Two `smr serve` processes of this tree in front of one fake provider. Each round: a passthrough
request to A, a `model=auto` request (new prompt) to A, a passthrough request to B, then `--gap`
seconds of nothing. Prints the passthrough p50 of A (which also classifies) and of B (which never
does). Measured in bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ab_bench import request
from bench.proxy_bench import fake_command, free_port, process, serve_command, wait_http, write_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gap", type=float, default=0.015, help="idle seconds between rounds")
    parser.add_argument("-n", type=int, default=800, help="rounds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smr-coloc-"))
    fake_port = free_port()
    config = work / "coloc.yaml"
    write_config(config, fake_port)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    with ExitStack() as stack:
        stack.enter_context(process(fake_command(fake_port), env, work / "fake.log"))
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            ledger = {"SMR_LEDGER_PATH": str(work / f"ledger{i}.sqlite3")}
            stack.enter_context(process(serve_command(config, port), {**env, **ledger}, work / f"smr{i}.log"))
        wait_http(fake_port, "/health", 20)
        for port in ports:
            wait_http(port, "/health", 60)
        a, b = (http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in ports)
        classifying, passthrough_only = [], []
        for i in range(args.n):
            classifying.append(request(a, "pass"))
            request(a, "auto", f"Write a short poem about the sea, variant {i}")
            passthrough_only.append(request(b, "pass"))
            time.sleep(args.gap)
    skip = min(50, args.n // 5)
    print(
        f"passthrough p50, {args.gap * 1000:.0f} ms between rounds: "
        f"process that also classifies {statistics.median(classifying[skip:]) * 1000:.3f} ms, "
        f"passthrough-only process {statistics.median(passthrough_only[skip:]) * 1000:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
