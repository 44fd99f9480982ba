"""Is it the thresholds or the scores? The best any pair of thresholds could do on a tier file.

    python bench/threshold_frontier.py data/tiers/valid.jsonl data/tiers/part_j.jsonl
    python bench/threshold_frontier.py --max-under 0.05 --model-dir /tmp/model data/tiers/valid.jsonl

Scores each file once with the configured classifier (the shipped files, or `--model-dir`), then
tries every pair of thresholds on a 0.01 grid and prints, beside the configured pair's figures, the
most accurate pair overall and the most accurate pair that keeps under-routing at or below
`--max-under` and complex → simple at or below `--max-c2s`. When even the best pair misses a goal,
no threshold tuning can meet it: the scores' order has to get better.

A diagnostic only: thresholds picked here are tuned to the file they were picked on, which is why
`smr train` picks the shipped ones by cross-validation on the training split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy import config
from proxy.classify import registry
from proxy.classify.datasets import load_rows
from proxy.classify.evaluate import score_rows, tier_metrics
from proxy.classify.head_fit import RANK
from proxy.router import tier_for

ROOT = Path(__file__).resolve().parents[1]
GRID = 0.01


def frontier(scores: Any, ranks: Any, max_under: float, max_c2s: float) -> dict[str, Any]:
    """The most accurate threshold pair, and the most accurate one within the under-routing limits."""
    import numpy as np

    cuts = np.round(np.arange(GRID, 1.0, GRID), 2)
    # tier = (d >= medium) + (d >= complex), as proxy.router.tier_for cuts it
    above = scores[None, :] >= cuts[:, None]  # one row of booleans per cut
    best: dict[str, Any] = {}
    for i, medium in enumerate(cuts):
        tiers = above[i][None, :].astype(np.int8) + above[i:]  # every complex cut >= this medium cut
        accuracy = (tiers == ranks).mean(1)
        under = (tiers < ranks).mean(1)
        c2s = ((tiers == 0) & (ranks == 2)).mean(1)
        for label, ok in (("best", np.ones_like(accuracy, bool)), ("within", (under <= max_under) & (c2s <= max_c2s))):
            if not ok.any():
                continue
            j = int(np.flatnonzero(ok)[np.argmax(accuracy[ok])])
            if label not in best or accuracy[j] > best[label]["accuracy"]:
                best[label] = {
                    "medium": float(medium),
                    "complex": float(cuts[i + j]),
                    "accuracy": round(float(accuracy[j]), 3),
                    "under_routed": round(float(under[j]), 3),
                    "complex_to_simple": round(float(c2s[j]), 3),
                }
    return best


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="tier files (messages + tier)")
    parser.add_argument("--max-under", type=float, default=0.05, help="the under-routing goal (0.05)")
    parser.add_argument("--max-c2s", type=float, default=0.01, help="the complex → simple goal (0.01)")
    parser.add_argument("--model-dir", type=Path, help="classifier files other than the shipped ones")
    args = parser.parse_args()
    settings = config.load(ROOT / "pricing.yaml").router
    classifier = registry.make(settings, model_dir=args.model_dir)
    getattr(classifier, "load", lambda: None)()
    th = settings.thresholds
    for path in args.files:
        rows = load_rows(path)
        scores, _ = score_rows(classifier, rows)
        configured = tier_metrics([r.tier or "" for r in rows], [tier_for(d, th) for d in scores])
        ranks = np.asarray([RANK[r.tier or ""] for r in rows])
        report = {
            "file": str(path),
            "n": len(rows),
            "configured": {
                "medium": th.medium,
                "complex": th.complex,
                **{k: round(configured[k], 3) for k in ("accuracy", "under_routed", "complex_to_simple")},
            },
            **frontier(np.asarray(scores), ranks, args.max_under, args.max_c2s),
        }
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
