"""What the proxy adds: against calling the fake provider directly, and against LiteLLM's proxy.

One command runs everything on this machine, interleaved in one run:

    .venv/bin/python bench/proxy_bench.py            # all sections (installs LiteLLM on first use)
    .venv/bin/python bench/proxy_bench.py --quick    # fewer samples, for a smoke check
    .venv/bin/python bench/proxy_bench.py --no-litellm

It starts the fake provider (tests/fakes/openai_provider.py), this proxy (`smr serve`, once with the
embedded SQLite ledger and once with the Postgres ledger when Postgres answers), and LiteLLM's proxy
(`litellm[proxy]` in its own venv, bench/.venv-litellm, offline with LITELLM_LOCAL_MODEL_COST_MAP),
then measures:

1. added latency, non-streamed: a passthrough model, and `model=auto` (classifier on, a new prompt
   each time) against LiteLLM's own local router (`auto_router/complexity_router`), each on both of
   our processes (SQLite and Postgres ledger); every round visits the targets in a new order;
   and the CPU each proxy still uses in the 100 ms after an answer has arrived;
2. streaming: added time to first token, and per-chunk overhead over 64 chunks sent back to back; a
   40 ms gap between chunks is reported as a Nagle stall; and (2b) added time to first token of a
   stream paced as a fast provider paces it (16 chunks, 5 ms apart);
3. throughput at 1, 32 and 256 concurrent connections (wrk), error counts, and each proxy's RSS;
   and `model=auto` at 32 connections, a new prompt every request;
4. hundreds of long streams held open at once: how many, and at what memory.

Medians and p99 are quoted; the machine is noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
PY = sys.executable
AFTER_SAMPLES, AFTER_WINDOW = 40, 0.1  # section 1b: requests, and the seconds watched after each
# Section 2b: 16 chunks 5 ms apart, ~200 tokens/s, faster than providers stream: time to first token
# with the proxy idle after it, as in real use (in the 64-chunk burst the client waits for a core
# while the proxy and the fake pump the rest: bench/README.md).
PACED = "stream-16-5"


PROMPTS = [
    "hi! how are you today?",
    "Translate to French: the meeting moved to Thursday at 3pm.",
    "Write a Python function that merges two sorted lists and explain its complexity.",
    "Design a rate limiter for 1M requests per second across 5 regions; discuss consistency trade-offs.",
    "Here is my invoice: ACME Corp, order 5512, 3 x widgets at $12.50, shipping $4.99, total $42.49. "
    "Payment due within 30 days to account 00112233. What is the total and when is it due?",
]


def cpu_name() -> str:
    """The CPU's model and its widest int8 instructions: the classifier's speed depends on both."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = re.search(r"model name\s*:\s*(.*)", info)
    flags = set(m.group(1).split()) if (m := re.search(r"flags\s*:\s*(.*)", info)) else set()
    simd = next((f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags), "no AVX2")
    return f"{name.group(1).strip() if name else 'unknown CPU'} ({simd})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(port: int, path: str, timeout: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path, headers=headers or {})
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}{path} within {timeout:.0f} s")


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total = 0
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds every thread of these processes has run so far (schedstat: nanoseconds, not ticks)."""
    nanos = 0
    for current in pids:
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                nanos += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                pass  # a thread that ended meanwhile
    return nanos / 1e9


class Target:
    """Something that answers OpenAI chat completions: the fake itself, or a proxy in front of it."""

    def __init__(self, name: str, port: int, prefix: str, model: str, headers: dict[str, str], pid: int | None):
        self.name, self.port, self.prefix, self.model, self.headers, self.pid = name, port, prefix, model, headers, pid

    def body(self, *, stream: bool = False, model: str | None = None, content: str = "hello") -> bytes:
        return json.dumps(
            {"model": model or self.model, "messages": [{"role": "user", "content": content}], "stream": stream}
        ).encode()


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    """`cmd` running (its output in `log`) until the block ends. `python -m` imports from `cwd` first."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def write_config(path: Path, fake_port: int) -> None:
    """The proxy's config for the benchmarks: every tier on `pass`, all models on the fake provider."""
    path.write_text(f"""
providers:
  fake: {{adapter: openai, base_url: http://127.0.0.1:{fake_port}/v1}}
models:
  pass: {{provider: fake, input: 1.00, output: 2.00, upstream: fake-pass}}
  s64: {{provider: fake, input: 1.00, output: 2.00, upstream: stream-64-0}}
  paced: {{provider: fake, input: 1.00, output: 2.00, upstream: {PACED}}}
  held: {{provider: fake, input: 1.00, output: 2.00, upstream: stream-60-1000, timeout: 120}}
tiers: {{simple: [pass], medium: [pass], complex: [pass]}}
baseline: pass
""")


def fake_command(port: int) -> list[str]:
    return [PY, "-m", "tests.fakes.openai_provider", "--port", str(port)]


def serve_command(config: Path, port: int) -> list[str]:
    return [PY, "-m", "proxy", "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"]


def ensure_litellm() -> Path | None:
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    print("installing litellm[proxy] into bench/.venv-litellm (first run only) ...", file=sys.stderr)
    subprocess.run([PY, "-m", "venv", str(LITELLM_VENV)], check=True)
    done = subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"])
    return exe if done.returncode == 0 and exe.exists() else None


def postgres_url() -> str | None:
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return url
    except OSError:
        return None


# ---------------------------------------------------------------- measurements


def one_request(conn: http.client.HTTPConnection, target: Target, body: bytes) -> float:
    started = time.perf_counter()
    conn.request("POST", target.prefix + "/chat/completions", body=body, headers=target.headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{target.name}: HTTP {response.status}: {data[:200]!r}")
    return elapsed


def one_stream(conn: http.client.HTTPConnection, target: Target, body: bytes) -> tuple[float, float, list[float]]:
    """(time to first content chunk, total time, gaps between chunks) for one streamed request."""
    started = time.perf_counter()
    conn.request("POST", target.prefix + "/chat/completions", body=body, headers=target.headers)
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{target.name}: HTTP {response.status}: {response.read()[:200]!r}")
    first, last, gaps = 0.0, 0.0, []
    while line := response.readline():
        if line.startswith(b"data: ") and b'"content":"w' in line.replace(b" ", b""):
            now = time.perf_counter() - started
            if first == 0.0:
                first = now
            else:
                gaps.append(now - last)
            last = now
    return first, time.perf_counter() - started, gaps


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(
    targets: list[Target],
    samples: int,
    measure: Callable[[http.client.HTTPConnection, Target], float],
    warmup: int = 50,
) -> dict[str, list[float]]:
    """`samples` rounds, one request to each target per round, in a new shuffled order every round.

    A fixed order gives every target the same predecessor, and a proxy's work after its response
    (LiteLLM's logging callbacks, a ledger write) then always lands on the same neighbour's figure.
    """
    conns = {t.name: http.client.HTTPConnection("127.0.0.1", t.port, timeout=30) for t in targets}
    order = list(targets)
    shuffle = random.Random(7).shuffle
    for _ in range(warmup):
        for t in targets:
            measure(conns[t.name], t)
    out: dict[str, list[float]] = {t.name: [] for t in targets}
    for _ in range(samples):
        shuffle(order)
        for t in order:
            out[t.name].append(measure(conns[t.name], t))
    for conn in conns.values():
        conn.close()
    return out


# Lua for wrk: every request gets a prompt of its own (PROMPTS in turn, numbered per wrk thread),
# put where the body says PROMPT, so no classifier cache can answer.
DISTINCT_LUA = """
local made = 0
function setup(thread) made = made + 1; thread:set("tid", made) end
local prompts = {%s}
local serial = 0
function request()
  serial = serial + 1
  local text = prompts[serial %% #prompts + 1] .. " (#" .. tid .. "-" .. serial .. ")"
  return wrk.format(nil, nil, nil, (string.gsub(wrk.body, "PROMPT", text)))
end
"""


def wrk(target: Target, connections: int, seconds: int, body: bytes, distinct: bool = False) -> dict[str, float]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in target.headers.items())
    script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n{headers}')
    if distinct:  # the prompts are plain ASCII with no % (string.gsub's escape)
        script.write(DISTINCT_LUA % ", ".join(json.dumps(p) for p in PROMPTS))
    script.close()
    threads = min(2, connections)
    run = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",  # wrk's 2 s default counts a slow answer under overload as an error
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{target.port}{target.prefix}/chat/completions",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    os.unlink(script.name)
    text = run.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)) if "Requests/sec" in text else 0.0
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    total = int(m.group(1)) if (m := re.search(r"(\d+) requests in", text)) else 0
    return {"rps": rps, "errors": non2xx + sock, "requests": total}


async def hold_streams(target: Target, count: int, body: bytes, settle: float) -> tuple[int, float]:
    """Open `count` streams at once; how many delivered a first chunk, and the RSS while all are held."""
    request = (
        f"POST {target.prefix}/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
        + "\r\n"
    ).encode() + body
    streams: list[asyncio.StreamWriter] = []

    async def open_one() -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
            streams.append(writer)
            writer.write(request)
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), 30)
                if not line:
                    return False
                if line.startswith(b"data: "):
                    return True
        except (TimeoutError, OSError):
            return False

    ok = await asyncio.gather(*(open_one() for _ in range(count)))
    await asyncio.sleep(settle)
    rss = tree_rss_mb(target.pid) if target.pid else 0.0
    for writer in streams:
        writer.close()
    return sum(ok), rss


# ---------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter load runs")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--streams", type=int, default=500, help="long streams held open at once")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    samples, seconds = (300, 3) if args.quick else (2000, 8)
    logs = Path(tempfile.mkdtemp(prefix="smr-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake_port, ours_port, pg_port, lite_port = free_port(), free_port(), free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}/v1"
    config = logs / "smr.yaml"
    write_config(config, fake_port)
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores, {cpu_name()}, Python {sys.version.split()[0]}"}
    with ExitStack() as exits:
        stack = exits.enter_context
        fake = stack(process(fake_command(fake_port), env, logs / "fake.log"))
        wait_http(fake_port, "/health", 20)
        targets = [Target("direct", fake_port, "/v1", "fake-pass", {"content-type": "application/json"}, fake.pid)]
        smr_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
        smr_env["SMR_LEDGER_PATH"] = str(logs / "ledger.sqlite3")
        ours = stack(process(serve_command(config, ours_port), smr_env, logs / "smr.log"))
        wait_http(ours_port, "/health", 60)
        targets.append(Target("smr", ours_port, "/v1", "pass", {"content-type": "application/json"}, ours.pid))
        pg = postgres_url()
        if pg:
            pg_env = {**smr_env, "DATABASE_URL": pg}
            pg_proc = stack(process(serve_command(config, pg_port), pg_env, logs / "smr-pg.log"))
            wait_http(pg_port, "/health", 60)
            targets.append(Target("smr+pg", pg_port, "/v1", "pass", {"content-type": "application/json"}, pg_proc.pid))
        litellm = None if args.no_litellm else ensure_litellm()
        if litellm:
            (logs / "litellm.yaml").write_text(
                json.dumps(
                    {
                        "model_list": [
                            {
                                "model_name": name,
                                "litellm_params": {"model": f"openai/{up}", "api_base": fake_url, "api_key": "sk-fake"},
                            }
                            for name, up in (
                                ("pass", "fake-pass"),
                                ("s64", "stream-64-0"),
                                ("paced", PACED),
                                ("held", "stream-60-1000"),
                            )
                        ]
                        + [
                            {  # LiteLLM's own local router (rule-based complexity scoring), every tier on `pass`
                                "model_name": "auto",
                                "litellm_params": {
                                    "model": "auto_router/complexity_router",
                                    "complexity_router_config": {
                                        "tiers": dict.fromkeys(("SIMPLE", "MEDIUM", "COMPLEX", "REASONING"), "pass")
                                    },
                                },
                            }
                        ],
                        "general_settings": {"master_key": "sk-bench"},
                    }
                )
            )
            lite_env = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
            lite = stack(
                process(
                    [
                        str(litellm),
                        "--config",
                        str(logs / "litellm.yaml"),
                        "--port",
                        str(lite_port),
                        "--num_workers",
                        "1",
                    ],
                    lite_env,
                    logs / "litellm.log",
                )
            )
            wait_http(lite_port, "/health/liveliness", 180)
            targets.append(
                Target(
                    "litellm",
                    lite_port,
                    "",
                    "pass",
                    {"content-type": "application/json", "authorization": "Bearer sk-bench"},
                    lite.pid,
                )
            )
        # model=auto on each of our processes, and LiteLLM's router
        routed = [Target(f"{t.name} auto", t.port, t.prefix, "auto", t.headers, t.pid) for t in targets[1:]]
        print(f"logs in {logs}", file=sys.stderr)

        # 1. added latency, non-streamed
        latency_targets = [*targets, *routed]
        bodies = {t.name: t.body() for t in latency_targets}
        counter = iter(range(10**9))

        def body_for(t: Target) -> bytes:
            if t in routed:  # a new prompt every time: no classifier cache can answer for it
                return t.body(content=f"{PROMPTS[next(counter) % len(PROMPTS)]} (#{next(counter)})")
            return bodies[t.name]

        lat = interleaved(latency_targets, samples, lambda c, t: one_request(c, t, body_for(t)))
        direct = statistics.median(lat["direct"])
        section: dict[str, dict[str, float]] = {}
        for name, values in lat.items():
            section[name] = {
                "p50_ms": statistics.median(values) * 1000,
                "p99_ms": pct(values, 0.99) * 1000,
                "added_p50_ms": (statistics.median(values) - direct) * 1000,
            }
        results["latency"] = section

        # 1b. CPU a proxy keeps busy after its answer has arrived (callbacks, ledger, spinning threads)
        after: dict[str, float] = {}
        for t in latency_targets[1:]:
            pids = process_tree(t.pid) if t.pid else []
            conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=30)
            burned = []
            for _ in range(AFTER_SAMPLES):
                one_request(conn, t, body_for(t))
                cpu = tree_cpu_s(pids)
                time.sleep(AFTER_WINDOW)
                burned.append(tree_cpu_s(pids) - cpu)
            conn.close()
            after[t.name] = statistics.median(burned) * 1000
        results["cpu_after_response_ms"] = after

        # 2. streaming: first token and per-chunk overhead over 64 chunks
        stream_targets = [
            Target(t.name, t.port, t.prefix, "stream-64-0" if t.name == "direct" else "s64", t.headers, t.pid)
            for t in targets
        ]
        sbodies = {t.name: t.body(stream=True) for t in stream_targets}
        runs: dict[str, list[tuple[float, float, list[float]]]] = {t.name: [] for t in stream_targets}
        conns = {t.name: http.client.HTTPConnection("127.0.0.1", t.port, timeout=30) for t in stream_targets}
        for i in range(samples // 4 + 20):
            for t in stream_targets:
                measurement = one_stream(conns[t.name], t, sbodies[t.name])
                if i >= 20:
                    runs[t.name].append(measurement)
        d_first = statistics.median(r[0] for r in runs["direct"])
        d_total = statistics.median(r[1] for r in runs["direct"])
        streaming: dict[str, dict[str, float]] = {}
        for name, rs in runs.items():
            gaps = [g for r in rs for g in r[2]]
            streaming[name] = {
                "ttft_p50_ms": statistics.median(r[0] for r in rs) * 1000,
                "added_ttft_p50_ms": (statistics.median(r[0] for r in rs) - d_first) * 1000,
                "per_chunk_added_us": (statistics.median(r[1] for r in rs) - d_total) / 64 * 1e6,
                "gaps_over_35ms": sum(1 for g in gaps if g > 0.035),
            }
        results["streaming"] = streaming

        # 2b. first token of a paced stream: the proxy has nothing else to do once it is sent
        paced = [
            Target(t.name, t.port, t.prefix, PACED if t.name == "direct" else "paced", t.headers, t.pid)
            for t in targets
        ]
        pbodies = {t.name: t.body(stream=True) for t in paced}
        firsts: dict[str, list[float]] = {t.name: [] for t in paced}
        order = list(paced)
        shuffle = random.Random(11).shuffle
        for i in range(samples // 10 + 10):
            shuffle(order)
            for t in order:
                first = one_stream(conns[t.name], t, pbodies[t.name])[0]
                if i >= 10:
                    firsts[t.name].append(first)
        d_paced = statistics.median(firsts["direct"])
        results["paced_streaming"] = {
            name: {
                "ttft_p50_ms": statistics.median(values) * 1000,
                "ttft_p99_ms": pct(values, 0.99) * 1000,
                "added_ttft_p50_ms": (statistics.median(values) - d_paced) * 1000,
            }
            for name, values in firsts.items()
        }

        # 3. throughput and RSS
        throughput: dict[str, dict[str, dict[str, float]]] = {}
        if shutil.which("wrk"):
            for conc in (1, 32, 256):
                for t in targets:
                    figures = wrk(t, conc, seconds, bodies[t.name])
                    figures["rss_mb"] = tree_rss_mb(t.pid) if t.pid else 0.0
                    throughput.setdefault(str(conc), {})[t.name] = figures
            for t in routed:  # model=auto at 32 connections, a new prompt every request
                figures = wrk(t, 32, seconds, t.body(content="PROMPT"), distinct=True)
                figures["rss_mb"] = tree_rss_mb(t.pid) if t.pid else 0.0
                throughput["32"][t.name] = figures
        else:
            print("wrk not found: section 3 skipped (Debian: apt-get install wrk)", file=sys.stderr)
        results["throughput"] = throughput

        # 4. long streams held open
        held: dict[str, dict[str, float]] = {}
        for t in targets[1:]:
            body = t.body(stream=True, model="held")
            ok, rss = asyncio.run(hold_streams(t, args.streams, body, settle=3))
            held[t.name] = {"opened": args.streams, "streaming": ok, "rss_mb": rss}
        results["held_streams"] = held

    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, object]) -> None:
    print(f"\nmachine: {results['machine']}")
    print("\n1. non-streamed latency (ms)        p50      p99   added p50")
    for name, f in results["latency"].items():  # type: ignore[attr-defined]
        print(f"   {name:<28} {f['p50_ms']:7.3f}  {f['p99_ms']:7.3f}  {f['added_p50_ms']:8.3f}")
    print(f"\n1b. CPU used in the {AFTER_WINDOW * 1000:.0f} ms after an answer (ms, median)")
    for name, ms in results["cpu_after_response_ms"].items():  # type: ignore[attr-defined]
        print(f"   {name:<28} {ms:7.2f}")
    print("\n2. streaming, 64 chunks        ttft p50  added ttft  added/chunk (us)  gaps>35ms")
    for name, f in results["streaming"].items():  # type: ignore[attr-defined]
        print(
            f"   {name:<26} {f['ttft_p50_ms']:8.3f}  {f['added_ttft_p50_ms']:9.3f}  "
            f"{f['per_chunk_added_us']:15.1f}  {f['gaps_over_35ms']:9d}"
        )
    print(f"\n2b. paced stream ({PACED}: chunks, ms apart)   ttft p50  ttft p99  added ttft")
    for name, f in results["paced_streaming"].items():  # type: ignore[attr-defined]
        print(f"   {name:<36} {f['ttft_p50_ms']:8.3f}  {f['ttft_p99_ms']:8.3f}  {f['added_ttft_p50_ms']:9.3f}")
    print("\n3. throughput (wrk)     conns   req/s   errors   RSS MiB")
    for conc, row in results["throughput"].items():  # type: ignore[attr-defined]
        for name, f in row.items():
            print(f"   {name:<20} {conc:>6} {f['rps']:8.0f} {f['errors']:7.0f} {f['rss_mb']:8.1f}")
    print("\n4. long streams held open     opened  streaming  RSS MiB")
    for name, f in results["held_streams"].items():  # type: ignore[attr-defined]
        print(f"   {name:<26} {f['opened']:6.0f} {f['streaming']:10.0f} {f['rss_mb']:8.1f}")


if __name__ == "__main__":
    main()
