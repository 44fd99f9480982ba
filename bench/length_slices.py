"""Tier accuracy by prompt length, side by side: runs of `bench/recipe_compare.py --dump FILE`, or
a model directory scored here with the runtime classifier.

    python bench/recipe_compare.py --dump /tmp/ends.json --check data/tiers/part_j.jsonl
    python bench/recipe_compare.py --view ask --dump /tmp/ask.json --check data/tiers/part_j.jsonl
    python bench/length_slices.py /tmp/ends.json /tmp/ask.json
    python bench/length_slices.py --model proxy/classify/model --file data/tiers/valid.jsonl \\
        --file data/tiers/part_j.jsonl --file data/tiers/part_n.jsonl --file data/tiers/part_p.jsonl

For every tier file the runs scored, and every length slice (characters of the last message), each
run's accuracy / under-routed / over-routed share and mean routing cost (`head_fit.COST`, what the
thresholds are tuned by: under-routing costs 2.5 times over-routing), at the run's own thresholds
(a dump's, tuned on its training split; a model's, from its meta.json). The last slice, "long",
is every prompt the "ask" view reads differently from the "ends" view (longer than
`proxy.classify.embedding.MAX_CHARS`); "every file" pools the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import load_rows
from proxy.classify.embedding import MAX_CHARS, EmbeddingClassifier
from proxy.classify.head_fit import COST, RANK
from proxy.config import Thresholds
from proxy.router import tier_for

SLICES = (("all", 0, None), ("≤ 300", 0, 300), ("301-1000", 301, MAX_CHARS), ("long", MAX_CHARS + 1, None))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", type=Path, nargs="*", help="files written by recipe_compare.py --dump")
    parser.add_argument("--model", type=Path, help="a directory of classifier files to score the --file's with")
    parser.add_argument("--file", type=Path, action="append", default=[], help="a tier file (with --model)")
    args = parser.parse_args()
    if bool(args.model) != bool(args.file) or not (args.dumps or args.model):
        parser.error("give dumps, or --model with at least one --file")
    runs = {path.stem: json.loads(path.read_text()) for path in args.dumps}
    if args.model:
        runs[args.model.name] = scored(args.model, args.file)
    names = [name for name in next(iter(runs.values()))["rows"] if all(name in run["rows"] for run in runs.values())]
    print("file | slice | n | " + " | ".join(f"{run}: acc / under / over / cost" for run in runs))
    for name in [*names, "every file"]:
        for label, low, high in SLICES:
            cells, n = [], 0
            for run in runs.values():
                thresholds = Thresholds(*run["thresholds"])
                every = [r for file in names if name in (file, "every file") for r in run["rows"][file]]
                rows = [r for r in every if r[3] >= low and (high is None or r[3] <= high)]
                n = len(rows)
                routed = [(RANK[tier], RANK[tier_for(d, thresholds)]) for _, tier, d, _ in rows]
                share = [sum(test(want, got) for want, got in routed) / max(n, 1) for test in _TESTS]
                share.append(sum(COST[want][got] for want, got in routed) / max(n, 1))
                cells.append(" / ".join(f"{x:.3f}" for x in share))
            print(f"{name} | {label} | {n} | " + " | ".join(cells))
    return 0


def scored(model: Path, files: list[Path]) -> dict[str, Any]:
    """What recipe_compare's --dump holds, for the runtime classifier in `model` on `files`."""
    classifier = EmbeddingClassifier(model, threads=1)
    classifier.load()
    rows = {
        path.stem: [[r.id, r.tier, classifier.score(r.prompt).score, len(r.prompt.text)] for r in load_rows(path)]
        for path in files
    }
    thresholds = classifier.meta["thresholds"]
    return {"thresholds": [thresholds["medium"], thresholds["complex"]], "rows": rows}


_TESTS = (lambda want, got: got == want, lambda want, got: got < want, lambda want, got: got > want)


if __name__ == "__main__":
    raise SystemExit(main())
