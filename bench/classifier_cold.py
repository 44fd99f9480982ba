"""Why classification costs more inside the proxy than back to back: `python bench/classifier_cold.py`.

Scores distinct short prompts with the shipped classifier, each way in turn, a few rounds:
back to back; after a 15 ms sleep (the core idles, as between the proxy's requests); after 15 ms
of busy waiting (the core never idles and this process touches almost no memory: what is left is
time passing, during which the rest of the machine takes back what the run had warm); after reading
64 MB (the caches are evicted, the core never idles); and each of those called on the event loop
("inline") or through anyio's worker thread, as the server does. Prints the median µs of each,
then the CPU the process burns in the 50 ms after a classification has returned (onnxruntime's pool
threads spinning on). `--spin` leaves them spinning after each run, onnxruntime's default.

`--gaps` sweeps the busy wait from 0 to 15 ms on a one-thread classifier, plain and with a small
float32 matrix product repeated through the wait (the vector units kept busy), to show how fast
the warm state decays.

`--threads` compares, through the worker thread, the shipped setting (a short prompt after an idle
gap runs on a single-threaded session, everything else on the two-thread pool) with the pool always
and with one thread always, for short and 100-token prompts, back to back and after idle gaps.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify import Prompt
from proxy.classify.embedding import EmbeddingClassifier

GAP = 0.015
AFTER = 0.05
EVICT_BYTES = 64 * 1024 * 1024


async def measure(rounds: int, prompts: int, spin: bool) -> dict[str, float]:
    import anyio.to_thread
    import numpy as np

    classifier = EmbeddingClassifier(spin=spin)
    classifier.load()
    junk = np.ones(EVICT_BYTES // 8)
    times: dict[str, list[float]] = {}
    serial = 0
    for _ in range(rounds):
        for before in ("back to back", "after 15 ms idle", "after 15 ms busy", "after reading 64 MB"):
            for how in ("inline", "worker thread"):
                samples = []
                for _ in range(prompts):
                    serial += 1
                    if before == "after 15 ms idle":
                        await asyncio.sleep(GAP)
                    elif before == "after 15 ms busy":
                        until = time.perf_counter() + GAP
                        while time.perf_counter() < until:
                            pass
                    elif before == "after reading 64 MB":
                        junk.sum()
                    prompt = Prompt(f"Write a Python function that merges two sorted lists, variant {serial}")
                    started = time.perf_counter()
                    if how == "inline":
                        classifier.score(prompt)
                    else:
                        await anyio.to_thread.run_sync(classifier.score, prompt)
                    samples.append(time.perf_counter() - started)
                times.setdefault(f"{before}, {how}", []).append(statistics.median(samples[10:]))
    burned = []
    for i in range(prompts):
        classifier.score(Prompt(f"Write a Python function that merges two sorted lists, again {i}"))
        cpu = time.process_time()  # every thread of the process
        await asyncio.sleep(AFTER)
        burned.append(time.process_time() - cpu)
    medians = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    medians[f"CPU burned in the {AFTER * 1000:.0f} ms after a run"] = statistics.median(burned) * 1e6
    return medians


LONG = " ".join(["the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "away"] * 10)


async def compare_threads(rounds: int, prompts: int) -> dict[str, float]:
    import anyio.to_thread

    variants = {
        "shipped": EmbeddingClassifier(),
        "pool always": EmbeddingClassifier(cold_single=False),
        "one thread": EmbeddingClassifier(threads=1),
    }
    for classifier in variants.values():
        classifier.load()
    times: dict[str, list[float]] = {}
    serial = 0
    for _ in range(rounds):
        for gap in (0.0, 0.002, 0.008, GAP, 0.1):
            for length in ("short", "100 tokens"):
                for name, classifier in variants.items():
                    samples = []
                    for _ in range(prompts):
                        serial += 1
                        text = f"Write a Python function that merges two sorted lists, variant {serial}"
                        prompt = Prompt(text if length == "short" else f"{LONG} {serial}")
                        if gap:
                            await asyncio.sleep(gap)
                        started = time.perf_counter()
                        await anyio.to_thread.run_sync(classifier.score, prompt)
                        samples.append(time.perf_counter() - started)
                    key = f"{length}, {'back to back' if not gap else f'after {gap * 1000:.0f} ms idle'}, {name}"
                    times.setdefault(key, []).append(statistics.median(samples[3:]))
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def sweep_gaps(rounds: int, prompts: int) -> dict[str, float]:
    import numpy as np

    classifier = EmbeddingClassifier(threads=1)
    classifier.load()
    square = np.ones((64, 64), dtype=np.float32)
    times: dict[str, list[float]] = {}
    serial = 0
    for _ in range(rounds):
        for gap_ms in (0, 0.5, 1, 2, 4, 8, 15):
            for matmul in (False, True):
                samples = []
                for _ in range(prompts):
                    serial += 1
                    until = time.perf_counter() + gap_ms / 1000
                    while time.perf_counter() < until:
                        if matmul:
                            square @ square
                    prompt = Prompt(f"Write a short poem about the sea, variant {serial}")
                    started = time.perf_counter()
                    classifier.score(prompt)
                    samples.append(time.perf_counter() - started)
                key = f"after {gap_ms:g} ms busy{' with a matmul' if matmul else ''}"
                times.setdefault(key, []).append(statistics.median(samples[5:]))
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=120)
    parser.add_argument("--spin", action="store_true", help="pool threads spin on after a run")
    parser.add_argument(
        "--threads", action="store_true", help="compare one thread, two, and the shipped mix (--prompts capped at 30)"
    )
    parser.add_argument("--gaps", action="store_true", help="sweep the busy gap before a prompt (--prompts up to 60)")
    args = parser.parse_args()
    if args.gaps:
        results = sweep_gaps(args.rounds, min(args.prompts, 60))
    elif args.threads:
        results = asyncio.run(compare_threads(args.rounds, min(args.prompts, 30)))
    else:
        results = asyncio.run(measure(args.rounds, args.prompts, args.spin))
    for name, micros in results.items():
        print(f"{name:<50} {micros:8.0f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
