"""The floor: what a proxy that does nothing adds on this machine. `python bench/relay_floor.py`.

Starts the fake provider, a byte relay (asyncio on uvloop, like the proxy: each client connection
gets one connection to the fake and the bytes are copied both ways, no HTTP parsing at all) and
this proxy (passthrough model, SQLite ledger), then sends the same non-streamed request to the fake
directly, through the relay and through the proxy, interleaved. The relay's added p50 is what the
extra hop costs here (two more processes woken per request on loopback); the proxy's minus the
relay's is what the proxy's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ab_bench import WARMUP, request
from bench.proxy_bench import PY, fake_command, free_port, process, serve_command, wait_http, write_config


class _Side(asyncio.Protocol):
    """One end of a relayed connection: what it receives goes out of the other end."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def relay(listen: int, upstream: int) -> None:
    loop = asyncio.get_running_loop()

    class Downstream(_Side):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.connecting = loop.create_task(self.connect())

        async def connect(self) -> None:
            _, up = await loop.create_connection(_Side, "127.0.0.1", upstream)
            up.peer, self.peer = self, up
            assert up.transport is not None
            for data in self.pending:
                up.transport.write(data)
            self.pending.clear()

    server = await loop.create_server(Downstream, "127.0.0.1", listen)
    await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="rounds")
    parser.add_argument("--relay", nargs=2, type=int, metavar=("LISTEN", "UPSTREAM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        import uvloop

        uvloop.run(relay(*args.relay))
        return 0
    work = Path(tempfile.mkdtemp(prefix="smr-floor-"))
    fake_port, relay_port, smr_port = free_port(), free_port(), free_port()
    config = work / "floor.yaml"
    write_config(config, fake_port)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SMR_LEDGER_PATH"] = str(work / "ledger.sqlite3")
    with ExitStack() as stack:
        stack.enter_context(process(fake_command(fake_port), env, work / "fake.log"))
        relay_cmd = [PY, str(Path(__file__).resolve()), "--relay", str(relay_port), str(fake_port)]
        stack.enter_context(process(relay_cmd, env, work / "relay.log"))
        stack.enter_context(process(serve_command(config, smr_port), env, work / "smr.log"))
        wait_http(fake_port, "/health", 20)
        wait_http(relay_port, "/health", 20)
        wait_http(smr_port, "/health", 60)
        ports = {"direct": fake_port, "relay": relay_port, "smr": smr_port}
        conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, port in ports.items()}
        models = {"direct": "fake-pass", "relay": "fake-pass", "smr": "pass"}
        times: dict[str, list[float]] = {name: [] for name in ports}
        order = list(ports)
        shuffle = random.Random(7).shuffle
        for _ in range(args.n):
            shuffle(order)
            for name in order:
                times[name].append(request(conns[name], models[name]))
    p50 = {name: statistics.median(values[WARMUP:]) * 1000 for name, values in times.items()}
    print(f"non-streamed p50 over {args.n - WARMUP} rounds (ms): direct {p50['direct']:.3f}")
    print(f"  byte relay: {p50['relay']:.3f}, added {p50['relay'] - p50['direct']:.3f}")
    print(f"  smr:        {p50['smr']:.3f}, added {p50['smr'] - p50['direct']:.3f}")
    print(f"  smr's own work (smr - relay): {p50['smr'] - p50['relay']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
