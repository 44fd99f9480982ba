"""Two ONNX exports of the encoder side by side, in one process: `python bench/export_compare.py A.onnx B.onnx`.

    git worktree add /tmp/before 08d7062                     # the traced export, before onnx_graph.py
    python bench/export_compare.py /tmp/before/proxy/classify/model/model.onnx proxy/classify/model/model.onnx

Prints how far B's sentence embeddings are from A's (synthetic ids; a file with only
`last_hidden_state` is pooled here as the runtime pools it), then the median µs of one
`session.run` for 16- and 128-token inputs, back to back ("warm") and after reading 64 MB
("cold": the caches hold someone else's data, as between a proxy's requests). The files run in
alternating order every round, so the machine's drift hits them alike. `--threads` sets the
intra-op threads (default 2, as the proxy's pool); onnxruntime and numpy are all it needs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

EVICT_BYTES = 64 * 1024 * 1024
LENGTHS = (16, 128)


def session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.force_spinning_stop", "1")  # as the proxy runs it
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def embed(sess: Any, feed: dict[str, Any]) -> Any:
    import numpy as np

    if "sentence_embedding" in {out.name for out in sess.get_outputs()}:
        return sess.run(["sentence_embedding"], feed)[0][0]
    pooled = sess.run(["last_hidden_state"], feed)[0][0].mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs=2, help="two model.onnx files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    sessions = [session(path, args.threads) for path in args.models]
    rng = np.random.default_rng(0)

    def feed(tokens: int) -> dict[str, Any]:
        ids = rng.integers(1000, 29000, size=(1, tokens))
        ids[0, 0], ids[0, -1] = 101, 102  # [CLS] … [SEP]
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    for tokens in (3, 16, 64, 128):
        f = feed(tokens)
        gap = float(np.abs(embed(sessions[0], f) - embed(sessions[1], f)).max())
        print(f"{tokens:>4} tokens: embeddings at most {gap:.2g} apart")
    junk = np.ones(EVICT_BYTES // 8)
    for tokens in LENGTHS:
        times: dict[tuple[int, str], list[float]] = {(i, m): [] for i in range(2) for m in ("warm", "cold")}
        for r in range(args.rounds):
            for mode in ("warm", "cold"):
                for i in (0, 1) if r % 2 else (1, 0):
                    embed(sessions[i], feed(tokens))
                    if mode == "cold":
                        junk.sum()
                    f = feed(tokens)
                    started = time.perf_counter()
                    embed(sessions[i], f)
                    times[(i, mode)].append(time.perf_counter() - started)
        for mode in ("warm", "cold"):
            a, b = (statistics.median(times[(i, mode)][20:]) * 1e6 for i in (0, 1))
            print(f"{tokens:>4} tokens, {mode}: A {a:,.0f} µs, B {b:,.0f} µs ({b / a:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
