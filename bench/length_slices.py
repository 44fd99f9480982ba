"""Tier accuracy by prompt length, for runs of `bench/recipe_compare.py --dump FILE`, side by side.

    python bench/recipe_compare.py --dump /tmp/ends.json --check data/tiers/part_j.jsonl
    python bench/recipe_compare.py --view ask --dump /tmp/ask.json --check data/tiers/part_j.jsonl
    python bench/length_slices.py /tmp/ends.json /tmp/ask.json

For every tier file the runs scored, and every length slice (characters of the last message), each
run's accuracy / under-routed / over-routed share and mean routing cost (`head_fit.COST`, what the
thresholds are tuned by: under-routing costs 2.5 times over-routing), at the thresholds that run
tuned on its training split (in the dump). The last slice, "long", is every prompt the "ask" view reads differently from
the "ends" view (longer than `proxy.classify.embedding.MAX_CHARS`); "every file" pools the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.embedding import MAX_CHARS
from proxy.classify.head_fit import COST

RANK = {"simple": 0, "medium": 1, "complex": 2}
SLICES = (("all", 0, None), ("≤ 300", 0, 300), ("301-1000", 301, MAX_CHARS), ("long", MAX_CHARS + 1, None))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", type=Path, nargs="+")
    args = parser.parse_args()
    runs = {path.stem: json.loads(path.read_text()) for path in args.dumps}
    names = [name for name in next(iter(runs.values()))["rows"] if all(name in run["rows"] for run in runs.values())]
    print("file | slice | n | " + " | ".join(f"{run}: acc / under / over / cost" for run in runs))
    for name in [*names, "every file"]:
        for label, low, high in SLICES:
            cells, n = [], 0
            for run in runs.values():
                medium, complex_ = run["thresholds"]
                scored = [r for file in names if name in (file, "every file") for r in run["rows"][file]]
                rows = [r for r in scored if r[3] >= low and (high is None or r[3] <= high)]
                n = len(rows)
                routed = [(RANK[tier], 0 if d < medium else 1 if d < complex_ else 2) for _, tier, d, _ in rows]
                share = [sum(test(want, got) for want, got in routed) / max(n, 1) for test in _TESTS]
                share.append(sum(COST[want][got] for want, got in routed) / max(n, 1))
                cells.append(" / ".join(f"{x:.3f}" for x in share))
            print(f"{name} | {label} | {n} | " + " | ".join(cells))
    return 0


_TESTS = (lambda want, got: got == want, lambda want, got: got < want, lambda want, got: got > want)


if __name__ == "__main__":
    raise SystemExit(main())
