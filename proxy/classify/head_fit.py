"""Choosing the fine-tuning length and the thresholds by cross-validation (used only by `smr train`).

The difficulty is d = MIX · (P(tier ≥ medium), P(tier = complex), P(weak falls short)) from the network
(`proxy.classify.finetune`). On the tier training split only, 5 stratified folds: fine-tune on
four (and on the quality rows, which every fold shares), score the fifth after each epoch; the
epoch count and the (medium, complex) thresholds are the ones with the lowest mean routing cost
(below) on those out-of-fold scores. A translated row follows its source: it trains in the folds
that train on the source, and is never scored, so no fold is scored on a task it was taught in
another language, and the cut-offs fit the labelled batches' own mix of languages. The validation
split is never looked at here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from proxy.classify.evaluate import tier_metrics
from proxy.config import TIERS, Thresholds
from proxy.router import tier_for

if TYPE_CHECKING:
    from proxy.classify.finetune import Targets

RANK = {tier: i for i, tier in enumerate(TIERS)}
# cost[label][routed]: sending a prompt too low costs more than too high, complex→simple most.
COST = ((0.0, 1.0, 1.5), (2.5, 0.0, 1.0), (6.0, 2.5, 0.0))
FOLDS = 5
MIN_EPOCHS = 2
# d = (P(>= medium) + P(complex) + 0.6 P(weak falls short)) / 2.6: the tiers decide, the quality task
# orders prompts within them (on held-out exam questions it ranks better than the tier outputs alone)
MIX = (0.5 / 1.3, 0.5 / 1.3, 0.3 / 1.3)


class CrossValidation(NamedTuple):
    epochs: int
    thresholds: Thresholds
    by_epoch: dict[str, dict[str, Any]]  # out-of-fold cost, thresholds and tier metrics per epoch count


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


def standardiser(feats: Any) -> tuple[Any, Any]:
    """Mean and scale of the cheap features (columns) of the rows a model is fitted on."""
    return feats.mean(axis=0), feats.std(axis=0) + 1e-6


def difficulty(probs: Any) -> Any:
    """rows-by-3 output probabilities → d."""
    import numpy as np

    return probs @ np.asarray(MIX, dtype=np.float32)


def grouped_folds(fold: Sequence[int], follows: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """(fit, held) row indices per fold, from each own row's fold: row i goes where `follows[i]` goes.

    An own row has `follows[i] == i` and is held out in its fold; a follower (a translation) trains
    wherever its source trains and is held out nowhere.
    """
    folds: list[tuple[list[int], list[int]]] = []
    for k in sorted({fold[i] for i, f in enumerate(follows) if f == i}):
        fit = [i for i, f in enumerate(follows) if fold[f] != k]
        held = [i for i, f in enumerate(follows) if f == i and fold[i] == k]
        folds.append((fit, held))
    return folds


def _folds(labels: Any, seed: int, follows: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    own = np.asarray([i for i, f in enumerate(follows) if f == i])
    fold = np.zeros(len(follows), dtype=int)
    for k, (_, held) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(own, labels[own])):
        fold[own[held]] = k
    return grouped_folds(fold.tolist(), follows)


def cross_validate(
    ids: Sequence[list[int]],
    feats: Any,
    labels: Any,
    target: Targets,
    quality: dict[str, Sequence[int]],
    *,
    seed: int,
    unlabelled: Sequence[int] = (),
    follows: Sequence[int] | None = None,
) -> CrossValidation:
    """Out-of-fold d after each epoch from `MIN_EPOCHS` on; the cheapest epoch count and its thresholds.

    The tier rows are the first `len(labels)` of `ids`; the quality rows (`quality`, indices after
    them) join every fold's training and are never scored here, and so do the `unlabelled` rows
    (prompts a teacher network labelled, see `proxy.classify.finetune.distilled`). `follows[i]` is
    the tier row whose folds tier row i follows (its source, for a translation; i itself otherwise).
    """
    import numpy as np

    from proxy.classify.finetune import SCHEDULE_EPOCHS, fine_tune, output_probs

    follows = list(range(len(labels))) if follows is None else list(follows)
    oof = {e: np.zeros(len(labels)) for e in range(MIN_EPOCHS, SCHEDULE_EPOCHS + 1)}
    for fold, (fit_idx, held) in enumerate(_folds(labels, seed, follows)):
        mean, scale = standardiser(feats[fit_idx])  # the fold's tier rows, as the runtime head will
        z = (feats - mean) / scale

        def score_held(epoch: int, net: Any, z: Any = z, held: list[int] = held) -> None:
            if epoch in oof:
                oof[epoch][held] = difficulty(output_probs(net, ids, z, held))

        fine_tune(
            ids,
            z,
            target,
            [*fit_idx, *unlabelled],
            quality,
            seed=seed + fold,
            epochs=SCHEDULE_EPOCHS,
            after_epoch=score_held,
            label=f"fold {fold + 1}/{FOLDS}",
        )
    own = [i for i, f in enumerate(follows) if f == i]
    truth = [TIERS[y] for y in labels[own]]
    by_epoch: dict[str, dict[str, Any]] = {}
    best: tuple[float, int, Thresholds] = (float("inf"), 0, Thresholds())
    for epoch, all_scores in oof.items():
        scores = all_scores[own]
        thresholds, cost = tune_thresholds(labels[own].tolist(), scores.tolist())
        metrics = tier_metrics(truth, [tier_for(float(s), thresholds) for s in scores])
        by_epoch[str(epoch)] = {
            "cost": round(cost, 4),
            "thresholds": [thresholds.medium, thresholds.complex],
            **{k: round(metrics[k], 4) for k in ("accuracy", "macro_f1", "under_routed", "over_routed")},
            "complex_to_simple": round(metrics["complex_to_simple"], 4),
        }
        if cost < best[0] - 1e-9:
            best = (cost, epoch, thresholds)
    return CrossValidation(best[1], best[2], by_epoch)


def head_spec(layer: tuple[list[list[float]], list[float]], mean: Any, scale: Any) -> dict[str, Any]:
    """head.json for the runtime `Head`: its standardisation reproduces the network's input scaling."""
    from proxy.classify.finetune import DIM, SCALE

    w, b = layer
    return {
        "mean": [0.0] * DIM + [float(v) for v in mean],
        "scale": [1.0 / SCALE] * DIM + [float(v) for v in scale],
        "layers": [{"w": w, "b": b}],
        "mix": list(MIX),
    }
