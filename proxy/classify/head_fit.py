"""Fitting the classifier head (used only by `smr train`; imports numpy and scikit-learn lazily).

Recipe: standardise [embedding ⊕ cheap features]; two logistic regressions on our tier labels as
an ordinal target, P(tier ≥ medium) and P(tier = complex); optionally a third, P(strong model
right and weak model wrong), fitted on the public RouteLLM training splits. The difficulty is
d = Σ mix_i · P_i. The regularisation C and the thresholds are chosen on out-of-fold scores of
the tier training split (5 folds), never on the validation split, by the routing cost below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from proxy.classify.datasets import Row
from proxy.classify.evaluate import baselines, quality_metrics, tier_metrics
from proxy.config import TIERS, Thresholds
from proxy.router import tier_for

RANK = {tier: i for i, tier in enumerate(TIERS)}
# cost[label][routed]: sending a prompt too low costs more than too high, complex→simple most.
COST = ((0.0, 1.0, 1.5), (2.5, 0.0, 1.0), (6.0, 2.5, 0.0))
C_GRID = (0.03, 0.1, 0.3, 1.0)
AUX_WEIGHT = 0.2
FOLDS = 5


class Fitted(NamedTuple):
    head: dict[str, Any]
    recipe: dict[str, Any]
    thresholds: dict[str, float]
    metrics: dict[str, Any]


def _lr(x: Any, y: Any, c: float, seed: int) -> tuple[list[float], float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    model.fit(x, y)
    return [float(v) for v in model.coef_[0]], float(model.intercept_[0])


def _sigmoid(z: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-z))


def routing_cost(labels: Sequence[int], scores: Sequence[float], thresholds: Thresholds) -> float:
    routed = [RANK[tier_for(s, thresholds)] for s in scores]
    return sum(COST[t][r] for t, r in zip(labels, routed, strict=True)) / len(labels)


def tune_thresholds(labels: Sequence[int], scores: Sequence[float]) -> tuple[Thresholds, float]:
    """The (medium, complex) cut-offs on a 0.01 grid with the lowest mean routing cost."""
    import numpy as np

    s = np.asarray(scores)
    y = np.asarray(labels)
    cost = np.asarray(COST)
    best = (Thresholds(), float("inf"))
    grid = [i / 100 for i in range(1, 100)]
    for m in grid:
        for c in (g for g in grid if g >= m):
            routed = (s >= m).astype(int) + (s >= c).astype(int)
            total = float(cost[y, routed].mean())
            if total < best[1] - 1e-12:
                best = (Thresholds(medium=m, complex=c), total)
    return best


def _difficulty(x: Any, ordinal: list[tuple[list[float], float]], aux: Any | None, mix: Sequence[float]) -> Any:
    import numpy as np

    parts = [_sigmoid(x @ np.asarray(w) + b) for w, b in ordinal]
    if aux is not None:
        parts.append(aux)
    return np.clip(sum(m * p for m, p in zip(mix, parts, strict=True)), 0.0, 1.0)


def _folds(n: int, labels: Any, seed: int) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(range(n), labels))


def fit(
    data: dict[str, tuple[list[Row], Any]], quality_sets: Sequence[str], *, seed: int, aux_weight: float = AUX_WEIGHT
) -> Fitted:
    """Fit on data['train'] and the `<set>_train` parts; report on data['valid'] and `<set>_holdout`."""
    import numpy as np

    rows, raw = data["train"]
    labels = np.asarray([RANK[r.tier or ""] for r in rows])
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0) + 1e-6
    x = (raw - mean) / scale
    mix = [(1 - aux_weight) / 2, (1 - aux_weight) / 2] + ([aux_weight] if aux_weight else [])

    aux_w: tuple[list[float], float] | None = None
    if aux_weight:
        pub_x = np.concatenate([(data[f"{q}_train"][1] - mean) / scale for q in quality_sets])
        pub_rows = [r for q in quality_sets for r in data[f"{q}_train"][0]]
        pub_y = np.asarray([int((r.score_strong or 0) > (r.score_weak or 0)) for r in pub_rows])
        aux_w = _lr(pub_x, pub_y, 0.1, seed)

    def aux_of(z: Any) -> Any | None:
        return None if aux_w is None else _sigmoid(z @ np.asarray(aux_w[0]) + aux_w[1])

    folds = _folds(len(rows), labels, seed)
    search: dict[float, tuple[float, Thresholds]] = {}
    for c in C_GRID:
        oof = np.zeros(len(rows))
        for fit_idx, held_idx in folds:
            ordinal = [_lr(x[fit_idx], (labels[fit_idx] >= k).astype(int), c, seed) for k in (1, 2)]
            oof[held_idx] = _difficulty(x[held_idx], ordinal, aux_of(x[held_idx]), mix)
        thresholds, cost = tune_thresholds(labels.tolist(), oof.tolist())
        search[c] = (cost, thresholds)
    best_c = min(C_GRID, key=lambda c: (search[c][0], c))
    thresholds = search[best_c][1]
    ordinal = [_lr(x, (labels >= k).astype(int), best_c, seed) for k in (1, 2)]

    def score(raw_x: Any) -> list[float]:
        z = (raw_x - mean) / scale
        return [float(v) for v in _difficulty(z, ordinal, aux_of(z), mix)]

    valid_rows, valid_x = data["valid"]
    metrics: dict[str, Any] = {
        "valid": tier_metrics([r.tier or "" for r in valid_rows], [tier_for(s, thresholds) for s in score(valid_x)]),
        "cv_cost_by_C": {str(c): round(search[c][0], 4) for c in C_GRID},
    }
    for q in quality_sets:
        q_rows, q_x = data[f"{q}_holdout"]
        strong = [r.score_strong or 0.0 for r in q_rows]
        weak = [r.score_weak or 0.0 for r in q_rows]
        metrics[f"{q}_holdout"] = {**quality_metrics(score(q_x), strong, weak), **baselines(q_rows)}
    layers = [
        {
            "w": [w for w, _ in ordinal] + ([aux_w[0]] if aux_w else []),
            "b": [b for _, b in ordinal] + ([aux_w[1]] if aux_w else []),
        }
    ]
    head = {"mean": mean.tolist(), "scale": scale.tolist(), "layers": layers, "mix": mix}
    recipe = {
        "head": "ordinal logistic regression P(>=medium), P(complex)"
        + (" + aux P(strong right, weak wrong) on RouteLLM train splits" if aux_w else ""),
        "C": best_c,
        "aux_weight": aux_weight,
        "mix": mix,
        "threshold_objective": {"cost": [list(r) for r in COST], "folds": FOLDS},
    }
    return Fitted(head, recipe, {"medium": thresholds.medium, "complex": thresholds.complex}, metrics)
