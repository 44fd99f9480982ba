"""d against a quality signal of another kind: real Arena prompts and how well 11 models answered them.

    python bench/arena_check.py [../shared/data/arena_hard_1k_prompts.jsonl] [--json]

The file (FastChat's arena_hard_1k, see ../shared/data/README.md) gives some prompts
`mean_score_11_models`, a 0-10 judge score averaged over 11 models: low means most models
answered badly, so a router should send it up. Prints, for the shipped classifier's d and for
prompt length: Spearman's rank correlation with -score, and the AUC of telling "hard" prompts
(score ≤ 6, as ../shared/data/README.md does) from the rest. 0 and 0.5 are chance. Since
2026-12-07 `smr train` learns from these prompts without their scores (a teacher network's tier
outputs), so the scores are still unseen but the prompts are not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import read_jsonl, to_row
from proxy.classify.embedding import EmbeddingClassifier

ROOT = Path(__file__).resolve().parents[1]
HARD = 6.0


def ranks(values: Any) -> Any:
    """Average ranks (ties share the mean rank), 1-based."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    order = values.argsort(kind="mergesort")
    out = np.empty(len(values))
    out[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        out[tied] = out[tied].mean()
    return out


def spearman(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def auc(positive: Any, score: Any) -> float:
    """P(a positive row scores above a negative one), ties counted half (Mann-Whitney)."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    r = ranks(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT.parent / "shared" / "data" / "arena_hard_1k_prompts.jsonl"
    parser.add_argument("file", nargs="?", type=Path, default=default)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    objs = [o for o in read_jsonl(args.file) if o.get("mean_score_11_models") is not None]
    rows = [to_row(o, f"{args.file}:{o.get('id')}") for o in objs]
    score = [float(o["mean_score_11_models"]) for o in objs]
    hard = [s <= HARD for s in score]
    classifier = EmbeddingClassifier()
    classifier.load()
    d = [classifier.score(r.prompt).score for r in rows]
    length = [len(r.prompt.text) for r in rows]
    report = {
        "rows": len(rows),
        "hard_share": round(sum(hard) / len(hard), 3),
        **{
            name: {"spearman": round(spearman(v, [-s for s in score]), 3), "auc_hard": round(auc(hard, v), 3)}
            for name, v in (("d", d), ("length", length))
        },
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
