"""Classifier latency and throughput: `python bench/classifier_bench.py [--classifier embedding] [--json]`.

Reports p50/p99 of one `score` call for short prompts and for ~256-token prompts (the model
clips them to its `max_tokens`), each prompt distinct so no cache is involved, and prompts per
second when 1 and then `os.cpu_count()` threads score at once (the server's worker threads).
`--cut MAX HEAD` times the shipped network reading long prompts cut to MAX word pieces (as a
model trained on that cut would read them; `bench/valid_parts.py --cut` scores what it costs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.valid_parts import recut
from proxy.classify import Classifier, Prompt, registry
from proxy.classify.embedding import MODEL_DIR
from proxy.classify.evaluate import percentile
from proxy.config import Router

SHORT = [
    "hi! how are you today?",
    "what's the capital of Australia",
    "write a python function that reverses a string",
    "Design a rate limiter for 1M rps across 5 regions",
    "translate 'see you tomorrow' into German",
    "why does my React useEffect run twice?",
]
WORDS = (
    "We run a multi-tenant Postgres cluster behind PgBouncer and see p99 latency spikes every few minutes "
    "when autovacuum kicks in on the largest tables; explain what is happening, how to confirm it with "
    "pg_stat views, and which settings to change, with the trade-offs of each option for write-heavy load. "
).split()


def long_prompt(i: int) -> str:
    """About 256 tokens of realistic technical prose (word-piece count ≈ 1.3 x words)."""
    words = [WORDS[(i + j) % len(WORDS)] for j in range(195)]
    return f"[{i}] " + " ".join(words)


def latency(classifier: Classifier, texts: list[str], repeat: int) -> dict[str, float]:
    for text in texts[:5]:
        classifier.score(Prompt(text))  # warm-up
    times = []
    for r in range(repeat):
        for text in texts:
            prompt = Prompt(f"{text} #{r}")  # distinct text: no cache can help
            started = time.perf_counter()
            classifier.score(prompt)
            times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99), "mean_ms": statistics.fmean(times)}


def throughput(classifier: Classifier, texts: list[str], workers: int) -> float:
    prompts = [Prompt(f"{t} ~{i}") for i, t in enumerate(texts)]
    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        list(pool.map(classifier.score, prompts))
        return len(prompts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classifier", default="embedding", choices=["embedding", "rules"])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cut", type=int, nargs=2, metavar=("MAX", "HEAD"), help="cut long prompts to MAX word pieces")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model = recut(MODEL_DIR, Path(scratch), *args.cut) if args.cut else None
        classifier = registry.make(Router(classifier=args.classifier), model_dir=model)
        return measure(classifier, args.repeat, args.json)


def measure(classifier: Classifier, repeat: int, as_json: bool) -> int:
    cores = os.cpu_count() or 1
    mixed = [SHORT[i % len(SHORT)] + f" ({i})" for i in range(300)]
    report = {
        "classifier": classifier.name,
        "short": latency(classifier, SHORT, repeat),
        "tokens_256": latency(classifier, [long_prompt(i) for i in range(10)], max(repeat // 3, 5)),
        "throughput_1_thread_per_s": throughput(classifier, mixed, 1),
        f"throughput_{cores}_threads_per_s": throughput(classifier, mixed, cores),
    }
    if as_json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<28} {value if isinstance(value, str) else json.dumps(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
