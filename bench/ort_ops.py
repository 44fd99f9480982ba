"""Where onnxruntime spends a classification, by operator: `python bench/ort_ops.py [--tokens N ...]`.

Runs the shipped `model.onnx` on one intra-op thread (as a cold short prompt does in the proxy) for
distinct inputs of each length, with onnxruntime's profiler on, and prints the median wall time of
`session.run` and the kernel time per run of each operator type. With `--python PY ...` it runs the
same measurement under each of those interpreters (say, venvs holding different onnxruntime
releases), in alternating rounds so the machine's drift hits them alike, and prints them side by side:

    python3 -m venv /tmp/ort129 && /tmp/ort129/bin/pip install onnxruntime==1.29.0 numpy
    python3 -m venv /tmp/ort132 && /tmp/ort132/bin/pip install onnxruntime==1.32.0 numpy
    python bench/ort_ops.py --python /tmp/ort129/bin/python /tmp/ort132/bin/python

Only onnxruntime and numpy are needed in those interpreters; the input ids are synthetic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

MODEL = Path(__file__).resolve().parents[1] / "proxy" / "classify" / "model" / "model.onnx"


def measure(tokens: list[int], runs: int) -> dict[str, object]:
    """In this interpreter: {"version", "by_tokens": {n: {"run_us", "ops": {op: us per run}}}}."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    plain = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        profiled = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
        out: dict[str, object] = {"version": ort.__version__}
        by_tokens: dict[str, object] = {}
        for n in tokens:
            walls = []
            for i in range(runs):
                ids = np.asarray([[101] + [2000 + (7 * i + j) % 20000 for j in range(n - 2)] + [102]], dtype=np.int64)
                feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
                started = time.perf_counter()
                plain.run(["last_hidden_state"], feed)
                walls.append((time.perf_counter() - started) * 1e6)
                profiled.run(["last_hidden_state"], feed)
            by_tokens[str(n)] = {"run_us": statistics.median(walls[5:])}
        events = json.loads(Path(profiled.end_profiling()).read_text())
    # The profiled session ran len(tokens) * runs times, in that order: split its kernel events by run.
    kernels: list[list[tuple[str, int]]] = [[]]
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernels[-1].append((event["args"]["op_name"], event["dur"]))
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            kernels.append([])
    per_run = [k for k in kernels if k]
    for index, n in enumerate(tokens):
        ops: dict[str, float] = defaultdict(float)
        chunk = per_run[index * runs : (index + 1) * runs][5:]
        for run in chunk:
            for op, dur in run:
                ops[op] += dur / len(chunk)
        entry = by_tokens[str(n)]
        assert isinstance(entry, dict)
        entry["ops"] = dict(sorted(ops.items(), key=lambda kv: -kv[1]))
    out["by_tokens"] = by_tokens
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds with --python")
    parser.add_argument("--python", nargs="+", help="interpreters to compare, each with onnxruntime and numpy")
    parser.add_argument("--json", action="store_true", help="(internal) print one JSON object and exit")
    args = parser.parse_args()
    if args.json or not args.python:
        result = measure(args.tokens, args.runs)
        if args.json:
            print(json.dumps(result))
            return
        results = {sys.executable: [result]}
    else:
        results = {py: [] for py in args.python}
        for _ in range(args.rounds):
            for py in args.python:
                cmd = [py, __file__, "--json", "--runs", str(args.runs), "--tokens", *map(str, args.tokens)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[py].append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(results, args.tokens)


def report(results: dict[str, list[dict[str, object]]], tokens: list[int]) -> None:
    """Medians over rounds of each interpreter's figures, one column per interpreter."""
    names = [f"ort {rounds[0]['version']}" for rounds in results.values()]
    print(f"machine: {os.cpu_count()} cores; µs per run, one intra-op thread, median over rounds")
    for n in tokens:
        rows: dict[str, list[float]] = {}
        for column, rounds in enumerate(results.values()):
            for key, value in _flatten(rounds, str(n)).items():
                rows.setdefault(key, [0.0] * len(results))[column] = value
        print(f"\n{n} tokens".ljust(30) + "".join(f"{name:>14}" for name in names))
        for key, values in rows.items():
            print(f"  {key:28s}" + "".join(f"{v:14.1f}" for v in values))


def _flatten(rounds: list[dict[str, object]], n: str) -> dict[str, float]:
    figures: dict[str, list[float]] = defaultdict(list)
    for result in rounds:
        by_tokens = result["by_tokens"]
        assert isinstance(by_tokens, dict)
        entry = by_tokens[n]
        figures["session.run (wall)"].append(entry["run_us"])
        for op, us in entry["ops"].items():
            figures[op].append(us)
    return {key: statistics.median(values) for key, values in figures.items()}


if __name__ == "__main__":
    main()
