"""Two exports of the encoder side by side, in one process: `python bench/export_compare.py DIR_A DIR_B`.

    git worktree add /tmp/before 08d7062                     # the traced export, before onnx_graph.py
    python bench/export_compare.py /tmp/before/proxy/classify/model proxy/classify/model

Each directory holds classifier files (`model.onnx`, `tokenizer.json`, ...), run by the runtime's
own `Encoder` on synthetic word-piece ids: first how far B's sentence embeddings are from A's,
then the median µs of one run for 16- and 128-token inputs, back to back ("warm") and after
reading 64 MB ("cold": the caches hold someone else's data, as between a proxy's requests). The
two run in alternating order every round, so the machine's drift hits them alike. `--threads`
sets the intra-op threads (default 2, as the proxy's pool).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.embedding import Encoder

EVICT_BYTES = 64 * 1024 * 1024
LENGTHS = (16, 128)


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs=2, type=Path, help="two directories of classifier files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    encoders = [Encoder(path, threads=args.threads, cold_single=False) for path in args.models]
    rng = np.random.default_rng(0)

    def ids(tokens: int) -> list[int]:
        return [101, *(int(i) for i in rng.integers(1000, 29000, size=tokens - 2)), 102]  # [CLS] … [SEP]

    def run(encoder: Encoder, tokens: list[int]) -> np.typing.NDArray[np.float32]:
        return encoder._run(encoder.session, tokens)

    for tokens in (3, 16, 64, 128):
        x = ids(tokens)
        gap = float(np.abs(run(encoders[0], x) - run(encoders[1], x)).max())
        print(f"{tokens:>4} tokens: embeddings at most {gap:.2g} apart")
    junk = np.ones(EVICT_BYTES // 8)
    for tokens in LENGTHS:
        times: dict[tuple[int, str], list[float]] = {(i, m): [] for i in range(2) for m in ("warm", "cold")}
        for r in range(args.rounds):
            for mode in ("warm", "cold"):
                for i in (0, 1) if r % 2 else (1, 0):
                    run(encoders[i], ids(tokens))
                    if mode == "cold":
                        junk.sum()
                    x = ids(tokens)
                    started = time.perf_counter()
                    run(encoders[i], x)
                    times[(i, mode)].append(time.perf_counter() - started)
        for mode in ("warm", "cold"):
            a, b = (statistics.median(times[(i, mode)][20:]) * 1e6 for i in (0, 1))
            print(f"{tokens:>4} tokens, {mode}: A {a:,.0f} µs, B {b:,.0f} µs ({b / a:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
