"""Why the shipped classifier does not learn from the RouteLLM training parts: the experiment, rerunnable.

    pip install -e '.[train]'   # scikit-learn
    python bench/quality_probe.py [--json]

It scores every prompt of data/tiers and data/public with the shipped classifier (d, and the
[embedding ⊕ cheap features] vector the head reads), then:

1. APGR of d and of prompt length on the training parts and the hold-outs of both quality sets;
2. a "quality probe": logistic regression on the vector, fitted on the MMLU training part to
   predict "strong right, weak wrong" (5-fold out-of-fold APGR on that part, then the hold-outs);
3. d + λ·(q - mean q) for a few λ: both hold-outs, and the tier accuracy on the validation split
   with thresholds re-tuned on that same split (optimistic, an upper bound);
4. the MMLU subjects with the most to gain, against their mean d.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import Row, load_rows
from proxy.classify.embedding import EmbeddingClassifier, featurize
from proxy.classify.evaluate import quality_metrics, tier_metrics
from proxy.classify.head_fit import RANK, tune_thresholds
from proxy.router import tier_for

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "mmlu_train": "data/public/routellm_mmlu_dev_train.jsonl",
    "mmlu_holdout": "data/public/routellm_mmlu_dev_holdout.jsonl",
    "gsm8k_train": "data/public/routellm_gsm8k_dev_train.jsonl",
    "gsm8k_holdout": "data/public/routellm_gsm8k_dev_holdout.jsonl",
    "tiers_train": "data/tiers/train.jsonl",
    "tiers_valid": "data/tiers/valid.jsonl",
}
LAMBDAS = (0.0, 0.3, 1.0, 2.0)


def scored(classifier: EmbeddingClassifier, rows: list[Row]) -> tuple[Any, Any]:
    import numpy as np

    encoder = classifier._encoder()
    x = np.stack([featurize(encoder, r.prompt) for r in rows])
    head = classifier._head
    assert head is not None
    return x, np.asarray([head.difficulty(v) for v in x])


def apgr(score: Any, rows: list[Row]) -> float:
    figures = quality_metrics(
        list(map(float, score)), [r.score_strong or 0.0 for r in rows], [r.score_weak or 0.0 for r in rows]
    )
    return round(float(figures["apgr"]), 4)


def main() -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    classifier = EmbeddingClassifier()
    classifier.load()
    rows = {name: load_rows(ROOT / path) for name, path in SETS.items()}
    x, d = {}, {}
    for name, part in rows.items():
        print(f"scoring {name} ({len(part)})", file=sys.stderr, flush=True)
        x[name], d[name] = scored(classifier, part)
    report: dict[str, Any] = {"apgr": {}}
    for name in ("mmlu_train", "mmlu_holdout", "gsm8k_train", "gsm8k_holdout"):
        length = [len(r.prompt.text) for r in rows[name]]
        report["apgr"][name] = {"d": apgr(d[name], rows[name]), "length": apgr(length, rows[name])}

    train = rows["mmlu_train"]
    y = np.asarray([(r.score_strong or 0) > (r.score_weak or 0) for r in train], dtype=int)
    mean, scale = x["mmlu_train"].mean(0), x["mmlu_train"].std(0) + 1e-6
    z = (x["mmlu_train"] - mean) / scale
    oof = np.zeros(len(y))
    for fit, held in KFold(5, shuffle=True, random_state=0).split(z):
        oof[held] = LogisticRegression(C=0.01, max_iter=3000).fit(z[fit], y[fit]).predict_proba(z[held])[:, 1]
    probe = LogisticRegression(C=0.01, max_iter=3000).fit(z, y)

    def q(name: str) -> Any:
        return probe.predict_proba((x[name] - mean) / scale)[:, 1]

    report["probe"] = {
        "mmlu_train_out_of_fold": apgr(oof, train),
        "mmlu_holdout": apgr(q("mmlu_holdout"), rows["mmlu_holdout"]),
        "gsm8k_holdout": apgr(q("gsm8k_holdout"), rows["gsm8k_holdout"]),
    }
    centre = float(q("tiers_train").mean())
    labels = [r.tier or "" for r in rows["tiers_valid"]]
    mixed: dict[str, Any] = {}
    for lam in LAMBDAS:
        valid = d["tiers_valid"] + lam * (q("tiers_valid") - centre)
        thresholds, _ = tune_thresholds([RANK[t] for t in labels], list(map(float, valid)))
        tiers = tier_metrics(labels, [tier_for(float(s), thresholds) for s in valid])
        mixed[str(lam)] = {
            "mmlu_holdout": apgr(d["mmlu_holdout"] + lam * q("mmlu_holdout"), rows["mmlu_holdout"]),
            "gsm8k_holdout": apgr(d["gsm8k_holdout"] + lam * q("gsm8k_holdout"), rows["gsm8k_holdout"]),
            "valid_accuracy_upper_bound": round(float(tiers["accuracy"]), 4),
        }
    report["d_plus_lambda_q"] = mixed

    subjects: dict[str, list[tuple[int, float]]] = {}
    for row, score in zip(train, d["mmlu_train"], strict=True):
        subject = row.id.split("-")[1] if row.id and row.id.count("-") >= 2 else "?"
        subjects.setdefault(subject, []).append((int((row.score_strong or 0) > (row.score_weak or 0)), float(score)))
    table = sorted(
        ((sum(g for g, _ in v), len(v), sum(s for _, s in v) / len(v), k) for k, v in subjects.items()), reverse=True
    )
    report["mmlu_subjects_most_gain"] = [
        {"subject": k, "rows": n, "gain_rate": round(g / n, 2), "mean_d": round(m, 2)} for g, n, m, k in table[:6]
    ]
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
