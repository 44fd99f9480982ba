"""Eval metrics on tiny hand-made inputs whose answers are worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.classify import Prompt, Scored
from proxy.classify.datasets import DataError, Row, load_rows, split_ids
from proxy.classify.evaluate import _apgrs, apgr_intervals, evaluate, percentile, quality_metrics, tier_metrics
from proxy.config import Thresholds


def test_tier_metrics_counts_confusion_and_routing_direction() -> None:
    truth = ["simple", "simple", "medium", "medium", "complex", "complex"]
    routed = ["simple", "medium", "medium", "simple", "complex", "simple"]
    m = tier_metrics(truth, routed)
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["under_routed"] == pytest.approx(2 / 6)  # medium→simple, complex→simple
    assert m["over_routed"] == pytest.approx(1 / 6)
    assert m["complex_to_simple"] == pytest.approx(1 / 6)
    assert m["confusion"]["complex"] == {"simple": 1, "medium": 0, "complex": 1}
    # F1: simple 2·1/(2+2+1)=0.4, medium 2·1/(2+1+1)=0.5, complex 2·1/(2+0+1)=2/3
    assert m["macro_f1"] == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)


def test_perfect_router_on_quality_rows() -> None:
    # Only prompt 0 needs the strong model; a router that ranks it first gains everything at once.
    strong, weak = [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]
    m = quality_metrics([0.9, 0.1, 0.2, 0.3], strong, weak)
    # PGR is 0 only where round(k·4/100) = 0, that is k = 0…12: 13 of the 101 points
    assert m["apgr"] == pytest.approx(88 / 101)
    assert m["cpt50"] == pytest.approx(0.25)
    assert m["cpt80"] == pytest.approx(0.25)


def test_worst_router_and_cpt() -> None:
    strong, weak = [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]
    m = quality_metrics([0.0, 0.3, 0.2, 0.1], strong, weak)  # the one that matters ranks last
    assert m["cpt50"] == pytest.approx(1.0)
    assert m["apgr"] == pytest.approx(13 / 101)  # PGR 1 only where round(k·4/100) = 4, k ≥ 88


def _quality_rows(texts: list[str], strong: list[float], weak: list[float]) -> list[Row]:
    return [
        Row(id=str(i), prompt=Prompt(text=t), score_strong=s, score_weak=w)
        for i, (t, s, w) in enumerate(zip(texts, strong, weak, strict=True))
    ]


def test_bootstrap_apgr_of_a_resample_is_quality_metrics_on_the_rows_it_drew() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    n = 57
    strong, weak = rng.integers(0, 2, n).astype(float), rng.integers(0, 2, n).astype(float)
    strong[:3], weak[:3] = 1.0, 0.0  # the strong model is ahead overall
    scores = rng.integers(0, 5, n).astype(float)  # many ties: file order must break them, as in pgr_curve
    order = np.argsort(-scores, kind="stable")
    draws = np.vstack([np.ones(n, dtype=np.int64), rng.multinomial(n, np.full(n, 1 / n), size=3)])
    got = _apgrs(order, strong - weak, draws)
    for counts, apgr in zip(draws, got, strict=True):
        drawn = np.repeat(np.arange(n), counts)  # the resample as a file: each row as often as drawn
        want = quality_metrics(list(scores[drawn]), list(strong[drawn]), list(weak[drawn]))["apgr"]
        assert apgr == pytest.approx(want)


def test_bootstrap_intervals_bracket_and_separate() -> None:
    # 200 prompts; the strong model matters on the 50 short ones, so ranking by length is backwards
    n = 200
    texts = ["x" * (10 if i < 50 else 100 + i) for i in range(n)]
    strong, weak = [1.0] * n, [0.0 if i < 50 else 1.0 for i in range(n)]
    good = [1.0 if i < 50 else 0.0 for i in range(n)]
    rows = _quality_rows(texts, strong, weak)
    out = apgr_intervals(good, rows, resamples=300)
    lo, hi = out["apgr_ci95"]
    assert lo <= quality_metrics(good, strong, weak)["apgr"] <= hi
    assert out["lead_over_length_ci95"][0] > 0.5  # far ahead of a backwards router on every resample
    assert apgr_intervals(good, rows, resamples=300) == out  # seeded: the same file gives the same figures
    same = apgr_intervals([float(len(t)) for t in texts], rows, resamples=300)
    assert same["lead_over_length_ci95"] == [0.0, 0.0]  # the length router has no lead over itself


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) == 0.0


# Fixed's scores (0.1, 0.9) fall in simple and complex here, whatever `smr train` last tuned.
CUTS = Thresholds(medium=0.3, complex=0.7)


class Fixed:
    name = "fixed"
    inline = True
    loop_chars = 0

    def score(self, prompt: Prompt) -> Scored:
        return Scored(score=0.9 if "hard" in prompt.text else 0.1, reason="fixed")


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_evaluate_tier_file_reads_last_user_message(tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": "hard one"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "thanks <system-reminder>hard</system-reminder>"},
            ],
            "tier": "simple",
            "extra": 1,
        },
        {"messages": [{"role": "user", "content": "a hard proof"}], "tier": "complex"},
        {"messages": [{"role": "user", "content": "easy"}], "tier": "medium"},
    ]
    report = evaluate(Fixed(), load_rows(_write(tmp_path / "t.jsonl", rows)), CUTS, progress=None)
    assert report["kind"] == "tier"
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["under_routed"] == pytest.approx(1 / 3)
    assert report["p50_ms"] >= 0


def test_evaluate_quality_file_and_bad_files(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "hard"}], "score_strong": 1, "score_weak": 0},
        {"messages": [{"role": "user", "content": "easy"}], "score_strong": 1, "score_weak": 1},
    ]
    report = evaluate(Fixed(), load_rows(_write(tmp_path / "q.jsonl", rows)), CUTS, progress=None)
    assert report["kind"] == "quality"
    assert report["apgr"] > report["apgr_random"] == 0.5
    assert report["lead_over_length"] == pytest.approx(report["apgr"] - report["apgr_length"])
    assert len(report["apgr_ci95"]) == len(report["lead_over_length_ci95"]) == 2
    mixed = [rows[0], {"messages": [{"role": "user", "content": "x"}], "tier": "simple"}]
    with pytest.raises(DataError):
        evaluate(Fixed(), load_rows(_write(tmp_path / "m.jsonl", mixed)), CUTS, progress=None)
    with pytest.raises(DataError, match="tier must be one of"):
        load_rows(_write(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "x"}], "tier": "hard"}]))


def test_split_is_stable_and_stratified() -> None:
    items = [(f"id-{i}", "a" if i % 2 else "b") for i in range(40)]
    held = split_ids(items, 0.25)
    assert held == split_ids(list(reversed(items)), 0.25)
    assert sum(1 for i, s in items if i in held and s == "a") == 5


def test_a_new_labelled_batch_never_moves_a_held_out_row_into_training(tmp_path: Path) -> None:
    from proxy.classify.train import SPLIT_GROUPS, TRAIN_ONLY, split_tiers

    def batch(part: str, n: int) -> list[dict[str, Any]]:
        return [
            {
                "id": f"{part}-{i}",
                "messages": [{"role": "user", "content": f"q {i}"}],
                "tier": "medium",
                "category": "code",
            }
            for i in range(n)
        ]

    first, *later = [part for group in SPLIT_GROUPS for part in group]
    _write(tmp_path / first, batch(first, 40))
    for part in [*later, *TRAIN_ONLY]:
        _write(tmp_path / part, [])
    _, valid = split_tiers(tmp_path)
    held_before = {json.loads(line)["id"] for line in valid.read_text().splitlines()}
    assert len(held_before) == 10
    newest = SPLIT_GROUPS[-1][0]
    _write(tmp_path / newest, batch(newest, 40))  # the same stratum: split together, it would take slots
    _, valid = split_tiers(tmp_path)
    held_after = {json.loads(line)["id"] for line in valid.read_text().splitlines()}
    assert held_before < held_after
    assert len(held_after - held_before) == 10  # the new batch's own quarter


def test_translations_train_whole_and_only_of_training_rows(tmp_path: Path) -> None:
    from proxy.classify.train import SPLIT_GROUPS, TRAIN_ONLY, split_tiers

    first, *later = [part for group in SPLIT_GROUPS for part in group]
    rows = [
        {"id": f"a-{i}", "messages": [{"role": "user", "content": f"q {i}"}], "tier": "simple", "category": "x"}
        for i in range(40)
    ]
    _write(tmp_path / first, rows)
    for part in later:
        _write(tmp_path / part, [])

    def translation(source: str) -> dict[str, Any]:
        return {
            "id": f"l-{source}-es",
            "messages": [{"role": "user", "content": "p"}],
            "tier": "simple",
            "category": "x",
            "translation_of": source,
        }

    _write(tmp_path / TRAIN_ONLY[0], [])
    _, valid = split_tiers(tmp_path)
    held = {json.loads(line)["id"] for line in valid.read_text().splitlines()}
    trained = sorted({r["id"] for r in rows} - held)
    _write(tmp_path / TRAIN_ONLY[0], [translation(i) for i in trained])
    train, valid = split_tiers(tmp_path)
    train_ids = [json.loads(line)["id"] for line in train.read_text().splitlines()]
    assert {json.loads(line)["id"] for line in valid.read_text().splitlines()} == held
    assert train_ids[-len(trained) :] == [f"l-{i}-es" for i in trained]
    for bad in (sorted(held)[0], "nowhere-1"):
        _write(tmp_path / TRAIN_ONLY[0], [translation(bad)])
        with pytest.raises(DataError, match=r"part_l\.jsonl:1: translation_of must name a training row"):
            split_tiers(tmp_path)


def test_a_translation_trains_with_its_source_and_is_never_scored() -> None:
    from proxy.classify.head_fit import grouped_folds

    # rows 0-5 are labelled batches' rows in folds 0, 1, 2, 0, 1, 2; rows 6 and 7 translate rows 1 and 3
    fold = [0, 1, 2, 0, 1, 2, -1, -1]
    follows = [0, 1, 2, 3, 4, 5, 1, 3]
    folds = grouped_folds(fold, follows)
    assert [held for _, held in folds] == [[0, 3], [1, 4], [2, 5]]
    assert [fit for fit, _ in folds] == [[1, 2, 4, 5, 6], [0, 2, 3, 5, 7], [0, 1, 3, 4, 6, 7]]
    assert grouped_folds([0, 1, 0], [0, 1, 2]) == [([1], [0, 2]), ([0, 2], [1])]


def test_a_written_file_reads_back_whole_when_a_string_holds_a_unicode_line_break(tmp_path: Path) -> None:
    from proxy.classify.datasets import read_jsonl, write_jsonl

    rows = [{"id": "x-1", "prompt": "first\u2028second\x85third\x1cfourth"}, {"id": "x-2", "prompt": "plain"}]
    write_jsonl(tmp_path / "p.jsonl", rows)
    assert read_jsonl(tmp_path / "p.jsonl") == rows


def test_the_committed_split_is_the_one_smr_train_makes(tmp_path: Path) -> None:
    import shutil

    from proxy.classify.train import PARTS, UNSEEN, split_tiers

    tiers = Path(__file__).resolve().parents[1] / "data" / "tiers"
    for part in PARTS:
        shutil.copy(tiers / part, tmp_path / part)
    train, valid = split_tiers(tmp_path)
    assert train.read_bytes() == (tiers / "train.jsonl").read_bytes()
    assert valid.read_bytes() == (tiers / "valid.jsonl").read_bytes()
    assert UNSEEN and not set(UNSEEN) & set(PARTS)  # the unseen tests stay out of every split
    assert all((tiers / part).is_file() for part in UNSEEN)
