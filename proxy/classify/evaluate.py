"""`smr eval`: score a labelled JSONL file with a classifier and report how well it routes.

Tier files (`tier` on every line) report accuracy, macro-F1, under/over-routing and the
confusion matrix, with tiers cut by the config's thresholds. Quality files (`score_strong`,
`score_weak`) report RouteLLM's APGR and CPT(50%), CPT(80%): send the top k% of prompts by score
to the strong model, Q(k) is the mean quality reached, PGR(k) = (Q(k) - Q_weak)/(Q_strong -
Q_weak), APGR the mean PGR over k = 0, 1, …, 100, CPT(x) the smallest share of strong calls
with PGR ≥ x. Quality files also report how sure those APGRs are: a 95% paired bootstrap
interval of the APGR and of its lead over a router that sends the longest prompts to the strong
model (`BOOTSTRAP` resamples of the rows, both routers on the same resample). A hold-out of a few
hundred prompts moves APGR by several hundredths, so a lead whose interval holds 0 is not one.
Latency is the wall time of each `score` call.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from proxy.classify import Classifier
from proxy.classify.datasets import DataError, Row
from proxy.config import TIERS, Thresholds
from proxy.router import tier_for

_RANK = {tier: i for i, tier in enumerate(TIERS)}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def tier_metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the three tiers, under/over-routed shares, complex→simple, confusion.

    `confusion[t][p]` counts prompts labelled t routed to p.
    """
    n = len(truth)
    confusion = {t: dict.fromkeys(TIERS, 0) for t in TIERS}
    for t, p in zip(truth, predicted, strict=True):
        confusion[t][p] += 1
    f1s = []
    for tier in TIERS:
        tp = confusion[tier][tier]
        fp = sum(confusion[t][tier] for t in TIERS) - tp
        fn = sum(confusion[tier].values()) - tp
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    under = sum(1 for t, p in zip(truth, predicted, strict=True) if _RANK[p] < _RANK[t])
    over = sum(1 for t, p in zip(truth, predicted, strict=True) if _RANK[p] > _RANK[t])
    correct = sum(confusion[t][t] for t in TIERS)
    return {
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "macro_f1": sum(f1s) / len(f1s),
        "under_routed": under / n if n else 0.0,
        "over_routed": over / n if n else 0.0,
        "complex_to_simple": confusion["complex"]["simple"] / n if n else 0.0,
        "confusion": confusion,
    }


def pgr_curve(scores: Sequence[float], strong: Sequence[float], weak: Sequence[float]) -> list[float]:
    """PGR when the top m prompts by score go to the strong model, for m = 0 … n.

    Ties keep file order. If the strong model is no better than the weak one on average, PGR is
    undefined; the curve is then all zeros.
    """
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    q_weak, q_strong = sum(weak) / n, sum(strong) / n
    gap = q_strong - q_weak
    curve = [0.0]
    total = sum(weak)
    for i in order:
        total += strong[i] - weak[i]
        curve.append((total / n - q_weak) / gap if gap > 0 else 0.0)
    if gap <= 0:
        return [0.0] * (n + 1)
    return curve


def quality_metrics(scores: Sequence[float], strong: Sequence[float], weak: Sequence[float]) -> dict[str, Any]:
    """APGR over k = 0…100% of strong calls, and CPT(50%), CPT(80%) as shares of prompts."""
    n = len(scores)
    curve = pgr_curve(scores, strong, weak)
    apgr = sum(curve[round(k * n / 100)] for k in range(101)) / 101

    def cpt(x: float) -> float:
        return next((m / n for m, pgr in enumerate(curve) if pgr >= x - 1e-12), 1.0)

    return {"n": n, "apgr": apgr, "cpt50": cpt(0.5), "cpt80": cpt(0.8)}


BOOTSTRAP = 2000
BOOTSTRAP_SEED = 20251202


def _apgrs(order: Any, gain: Any, draws: Any) -> Any:
    """APGR of one ranking on each resample: `order` ranks the rows, `gain` is strong minus weak by
    row, `draws` is resamples-by-rows counts. On a resample PGR(m) = (gain of its top m) / (its gain)."""
    import numpy as np

    n = draws.shape[1]
    points = np.round(np.arange(101) * n / 100).astype(np.int64)
    out = np.zeros(len(draws))
    for b, counts in enumerate(draws):
        cum = np.concatenate([[0.0], np.cumsum(gain[np.repeat(order, counts[order])])])
        if cum[-1] > 0:
            out[b] = cum[points].mean() / cum[-1]
    return out


def apgr_intervals(
    scores: Sequence[float], rows: Sequence[Row], *, resamples: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> dict[str, list[float]]:
    """95% paired bootstrap intervals of APGR and of APGR minus the length router's APGR."""
    import numpy as np

    n = len(rows)
    gain = np.asarray([(r.score_strong or 0.0) - (r.score_weak or 0.0) for r in rows])
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples)
    ours = _apgrs(np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"), gain, draws)
    lengths = np.asarray([len(r.prompt.text) for r in rows], dtype=np.float64)
    length = _apgrs(np.argsort(-lengths, kind="stable"), gain, draws)
    return {
        "apgr_ci95": [float(v) for v in np.quantile(ours, [0.025, 0.975])],
        "lead_over_length_ci95": [float(v) for v in np.quantile(ours - length, [0.025, 0.975])],
    }


def quality_report(scores: Sequence[float], rows: Sequence[Row]) -> dict[str, Any]:
    """APGR and CPTs, a random router's APGR (0.5 in expectation, exactly) and that of one routing by
    length, the lead over it, and the intervals."""
    strong = [r.score_strong or 0.0 for r in rows]
    weak = [r.score_weak or 0.0 for r in rows]
    metrics = quality_metrics(scores, strong, weak)
    by_length = quality_metrics([float(len(r.prompt.text)) for r in rows], strong, weak)["apgr"]
    return {
        **metrics,
        "apgr_random": 0.5,
        "apgr_length": by_length,
        "lead_over_length": metrics["apgr"] - by_length,
        **apgr_intervals(scores, rows),
    }


def _progress(done: int, total: int, out: TextIO) -> None:
    width = 30
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        out.write("\n")
    out.flush()


def score_rows(
    classifier: Classifier, rows: Sequence[Row], progress: Callable[[int, int], None] | None = None
) -> tuple[list[float], list[float]]:
    """Scores and per-call milliseconds, in row order."""
    scores: list[float] = []
    times: list[float] = []
    step = max(len(rows) // 200, 1)
    for i, row in enumerate(rows, 1):
        started = time.perf_counter()
        scores.append(classifier.score(row.prompt).score)
        times.append((time.perf_counter() - started) * 1000)
        if progress is not None and (i % step == 0 or i == len(rows)):
            progress(i, len(rows))
    return scores, times


def evaluate(
    classifier: Classifier, rows: Sequence[Row], thresholds: Thresholds, *, progress: TextIO | None = sys.stderr
) -> dict[str, Any]:
    """The report for a tier file or a quality file; raises DataError for mixed or unlabelled files."""
    if not rows:
        raise DataError("the file has no rows")
    if all(r.tier is not None for r in rows):
        kind = "tier"
    elif all(r.score_strong is not None for r in rows):
        kind = "quality"
    else:
        raise DataError("every line needs `tier`, or every line `score_strong` and `score_weak`")
    report_progress = None if progress is None else (lambda d, t: _progress(d, t, progress))
    scores, times = score_rows(classifier, rows, report_progress)
    timing = {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
    if kind == "tier":
        predicted = [tier_for(s, thresholds) for s in scores]
        metrics = tier_metrics([r.tier or "" for r in rows], predicted)
    else:
        metrics = quality_report(scores, rows)
    return {"kind": kind, "classifier": classifier.name, **metrics, **timing}


def render(report: dict[str, Any]) -> str:
    """A readable table of the report."""
    lines = [f"{report['kind']} file, {report['n']} prompts, classifier {report['classifier']}"]
    if report["kind"] == "tier":
        for key in ("accuracy", "macro_f1", "under_routed", "over_routed", "complex_to_simple"):
            lines.append(f"  {key:<18} {report[key]:.3f}")
        lines.append("  confusion (rows: label, columns: routed to)")
        lines.append("  " + " " * 10 + "".join(f"{t:>9}" for t in TIERS))
        for t in TIERS:
            lines.append(f"  {t:<10}" + "".join(f"{report['confusion'][t][p]:>9}" for p in TIERS))
    else:
        lo, hi = report["apgr_ci95"]
        lines.append(f"  {'apgr':<18} {report['apgr']:.3f}   95% interval {lo:.3f} to {hi:.3f}")
        for key in ("apgr_random", "apgr_length"):
            lines.append(f"  {key:<18} {report[key]:.3f}")
        lo, hi = report["lead_over_length_ci95"]
        lead = report["lead_over_length"]
        lines.append(f"  {'lead_over_length':<18} {lead:+.3f}   95% interval {lo:+.3f} to {hi:+.3f}")
        for key in ("cpt50", "cpt80"):
            lines.append(f"  {key:<18} {report[key]:.3f}")
    lines.append(f"  {'p50_ms':<18} {report['p50_ms']:.2f}")
    lines.append(f"  {'p99_ms':<18} {report['p99_ms']:.2f}")
    return "\n".join(lines)
