"""The learned classifier as shipped: loads its files, separates obvious cases, falls back to rules."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from proxy.classify import Prompt, registry
from proxy.classify.cache import CachedClassifier
from proxy.classify.embedding import (
    COLD_GAP_S,
    COLD_MAX_TOKENS,
    FEATURE_NAMES,
    MAX_CHARS,
    MODEL_DIR,
    ClassifierUnavailable,
    Cut,
    EmbeddingClassifier,
    Encoder,
    Head,
    _clip_text,
    clip_ids,
    split_ask,
    token_ids,
)
from proxy.classify.features import _EXACT, _counted, cheap_features
from proxy.classify.finetune import COMPLEX_WEIGHT, DIM, FALLS_SHORT, OUTPUTS, SCALE, distilled, targets
from proxy.classify.head_fit import MIX, head_spec
from proxy.classify.rules import RuleClassifier
from proxy.config import Router
from proxy.router import tier_for

SHIPPED = Router().thresholds


@pytest.fixture(scope="module")
def classifier() -> EmbeddingClassifier:
    model = EmbeddingClassifier()
    model.load()
    return model


def test_shipped_files_load_and_score_in_range(classifier: EmbeddingClassifier) -> None:
    scored = classifier.score(Prompt("What's the capital of France?"))
    assert 0.0 <= scored.score <= 1.0
    assert scored.reason.startswith("embedding")
    assert classifier.meta["max_tokens"] > 0
    assert classifier.inline is False  # the server runs it off the event loop unless the loop is idle
    assert 0 < classifier.loop_chars <= 256  # and then only a short text


def test_obvious_cases_are_ordered(classifier: EmbeddingClassifier) -> None:
    easy = ["hi there!", "thanks, that helped", "what is 15% of 80?", "translate 'good morning' to Spanish"]
    hard = [
        "Design a globally distributed rate limiter for 1M requests per second across 5 regions; "
        "discuss consistency, failure modes and the trade-offs of each option.",
        "Prove that there are infinitely many primes of the form 4k+3, rigorously.",
        "Our Go service deadlocks under load when two goroutines take the same pair of mutexes in "
        "different orders through a callback. Find the lock-ordering bug and redesign it lock-free.",
    ]
    easy_scores = [classifier.score(Prompt(t)).score for t in easy]
    hard_scores = [classifier.score(Prompt(t)).score for t in hard]
    assert max(easy_scores) < min(hard_scores)
    thresholds = Router().thresholds
    assert all(tier_for(s, thresholds) == "simple" for s in easy_scores[:2])


def test_long_input_is_clipped_and_scored(classifier: EmbeddingClassifier) -> None:
    assert len(clip_ids(list(range(1000)), 128, 32)) == 128
    assert clip_ids([1, 2, 3], 128, 32) == [1, 2, 3]
    paste = "Meeting notes. " * 3000 + "\nWhat's the phone number in the signature?"
    assert 0.0 <= classifier.score(Prompt(paste)).score <= 1.0


@pytest.mark.parametrize("spin", [False, True])
def test_spin_decides_whether_threads_burn_a_core_after_a_run(spin: bool) -> None:
    """onnxruntime's pool threads left to spin burn ~50 ms of a core after every run (CPU time, not wall)."""
    if spin and (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the classifier runs without a thread pool, so nothing can spin")
    classifier = EmbeddingClassifier(spin=spin)
    burned = []
    for i in range(5):
        classifier.score(Prompt(f"Write a Python function that merges two sorted lists, variant {i}"))
        cpu = time.process_time()  # all threads of this process
        time.sleep(0.05)
        burned.append(time.process_time() - cpu)
    median = sorted(burned)[2]
    assert median > 0.02 if spin else median < 0.01, burned


def test_a_short_prompt_after_an_idle_gap_runs_on_one_thread_and_embeds_the_same() -> None:
    """Waking a pool that has slept costs more than its second thread saves on a short prompt."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the classifier has no thread pool")
    encoder = Encoder(MODEL_DIR, threads=2)
    encoder.warm()
    short = "Write a Python function that merges two sorted lists"
    long = " ".join(["the cat sat on the mat"] * (COLD_MAX_TOKENS // 6 + 1))
    time.sleep(COLD_GAP_S * 5)
    cold = encoder.encode(short)
    assert encoder.last_threads == 1
    warm = encoder.encode(short)  # straight after a run: the pool is still awake
    assert encoder.last_threads == 2
    np.testing.assert_array_equal(cold, warm)  # the same bits: the tier never depends on which ran
    time.sleep(COLD_GAP_S * 5)
    encoder.encode(long)  # long enough that two threads win even cold
    assert encoder.last_threads == 2
    for pool_only in (Encoder(MODEL_DIR, threads=2, spin=True), Encoder(MODEL_DIR, threads=2, cold_single=False)):
        time.sleep(COLD_GAP_S * 5)
        pool_only.encode(short)
        assert pool_only.single is None and pool_only.last_threads == 2


def test_the_graph_pools_as_the_runtime_did_for_older_model_files() -> None:
    """The shipped graph ends in the masked mean and L2 norm; an older model's hidden states are pooled in numpy."""
    encoder = Encoder(MODEL_DIR, threads=1, cold_single=False)
    assert encoder.pooled  # `smr train`'s fused export: one output the runtime reads as is
    texts = ["hi", "Write a Python function that merges two sorted lists", "x " * 200]
    pooled = [encoder.encode(text) for text in texts]
    encoder.pooled = False  # read `last_hidden_state` and pool it here, as for a model from before the export
    for text, vector in zip(texts, pooled, strict=True):
        by_hand = encoder.encode(text)
        assert vector.shape == by_hand.shape == (DIM,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        np.testing.assert_allclose(vector, by_hand, atol=1e-5)


def test_missing_files_raise_an_actionable_error(tmp_path: Path) -> None:
    with pytest.raises(ClassifierUnavailable, match="smr train"):
        EmbeddingClassifier(tmp_path)


def test_registry_falls_back_to_rules_when_files_are_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    partial = tmp_path / "model"
    partial.mkdir()
    shutil.copy(MODEL_DIR / "meta.json", partial / "meta.json")
    built = registry.build(Router(classifier="embedding"), model_dir=partial)
    assert isinstance(built, CachedClassifier)
    assert isinstance(built.inner, RuleClassifier)
    assert "rule-based" in caplog.text
    assert built.score(Prompt("hello")).reason.startswith("rules")


def test_registry_builds_the_embedding_classifier_by_default() -> None:
    built = registry.build(Router())
    assert isinstance(built, CachedClassifier)
    assert isinstance(built.inner, EmbeddingClassifier)
    assert built.inner.spin is False
    spinning = registry.build(Router(spin=True))
    assert isinstance(spinning, CachedClassifier) and isinstance(spinning.inner, EmbeddingClassifier)
    assert spinning.inner.spin is True


def test_shipped_thresholds_are_the_tuned_ones(classifier: EmbeddingClassifier) -> None:
    tuned = classifier.meta["thresholds"]
    assert (SHIPPED.medium, SHIPPED.complex) == (tuned["medium"], tuned["complex"])
    pricing = yaml.safe_load((Path(__file__).resolve().parents[1] / "pricing.yaml").read_text())
    assert pricing["router"]["thresholds"] == tuned


def test_shipped_int8_model_tracks_the_fp32_network(classifier: EmbeddingClassifier) -> None:
    check = classifier.meta["recipe"]["int8_vs_fp32"]
    assert check["rows"] >= 100
    assert check["mean_abs_diff"] < 0.02
    assert check["same_tier"] >= 0.95


def test_long_text_keeps_both_ends_before_tokenising() -> None:
    text = "START " + "filler words " * 2000 + " END?"
    clipped = _clip_text(text)
    assert len(clipped) <= MAX_CHARS + 3
    assert clipped.startswith("START") and clipped.endswith("END?")
    assert _clip_text("short") == "short"


EMAIL = "\n".join(f"Line {i}: the venue confirms room {i}, call 555-01{i:02d} with changes." for i in range(40))


def test_split_ask_finds_a_short_paragraph_at_either_end_of_a_paste() -> None:
    above = "what's the phone number for the night of the party?\n\n" + EMAIL
    assert split_ask(above) == ("what's the phone number for the night of the party?", EMAIL, "")
    below = "```\n" + EMAIL + "\n```\nwhich line mentions room 7?"
    before, paste, after = split_ask(below)
    assert (before, after) == ("", "which line mentions room 7?") and paste.strip().endswith(EMAIL[-40:])
    fenced = "Find the bug:\n```python\n" + EMAIL + "\n```"
    assert split_ask(fenced)[0] == "Find the bug:"
    assert split_ask(EMAIL) == ("", EMAIL, "")  # one long paragraph: no ask to set apart


def test_ask_view_keeps_the_ask_whole_and_only_a_sample_of_the_paste() -> None:
    tokenizer = Encoder(MODEL_DIR, threads=1, cold_single=False).tokenizer
    question = "what's the phone number for the night of the party?"
    text = question + "\n\n" + EMAIL
    cut = Cut(view="ask", paste_tokens=16)
    ids = token_ids(tokenizer, text, cut)
    asked = tokenizer.encode(question, add_special_tokens=False).ids
    assert ids[1 : 1 + len(asked)] == asked  # after [CLS], the question whole
    assert len(ids) == 2 + len(asked) + 16 <= cut.max_tokens
    ends = token_ids(tokenizer, text, Cut())
    assert len(ends) == Cut().max_tokens and ends[1 : 1 + len(asked)] == asked  # the ends view: mostly paste
    assert token_ids(tokenizer, EMAIL, cut) == token_ids(tokenizer, EMAIL, Cut())  # no ask: the ends view
    assert token_ids(tokenizer, question, cut) == token_ids(tokenizer, question, Cut())  # short: whole
    # a long ask leaves the room it does not use to the other end, and never overflows
    long_ask = "x " * 199  # a paragraph short enough to be an ask (< ASK_CHARS) of 199 word pieces
    ids = token_ids(tokenizer, long_ask.strip() + "\n\n" + EMAIL + "\n\n" + question, cut)
    assert len(ids) == cut.max_tokens and ids[-1 - len(asked) : -1] == asked


def test_the_cut_is_read_from_the_model_directory(tmp_path: Path) -> None:
    assert Cut.of({}) == Cut() and Cut.of(Cut(view="ask", paste_tokens=8).meta()) == Cut(view="ask", paste_tokens=8)
    with pytest.raises(ValueError, match="not a cut"):
        Cut(view="middle")
    with pytest.raises(ValueError, match="not a cut"):
        Cut(max_tokens=16, head_tokens=32)
    for path in MODEL_DIR.iterdir():
        if path.name != "meta.json":
            (tmp_path / path.name).symlink_to(path)
    meta = json.loads((MODEL_DIR / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "view": "ask", "paste_tokens": 8}))
    assert Encoder(tmp_path, threads=1, cold_single=False).cut == Cut(view="ask", paste_tokens=8)
    text = Prompt("what's the phone number for the night of the party?\n\n" + EMAIL)
    shipped, asked = EmbeddingClassifier(), EmbeddingClassifier(tmp_path)
    assert shipped.score(text).score != asked.score(text).score  # the runtime reads the paste as the meta says
    assert shipped.score(Prompt("hi")).score == asked.score(Prompt("hi")).score


def test_head_spec_reproduces_the_network_input_scaling() -> None:
    rng = np.random.default_rng(0)
    n_feat = len(FEATURE_NAMES)
    w = rng.normal(size=(OUTPUTS, DIM + n_feat))
    b = rng.normal(size=OUTPUTS)
    mean, scale = rng.normal(size=n_feat), rng.uniform(0.5, 2.0, size=n_feat)
    head = Head(head_spec((w.tolist(), b.tolist()), mean, scale))
    emb = rng.normal(size=DIM)
    emb /= np.linalg.norm(emb)
    feats = rng.normal(size=n_feat)
    expected = 1 / (1 + np.exp(-(w @ np.concatenate([emb * SCALE, (feats - mean) / scale]) + b)))
    got = head.outputs(np.concatenate([emb, feats]).astype(np.float32))
    assert np.allclose(got, expected, atol=1e-4)
    d = head.difficulty(np.concatenate([emb, feats]).astype(np.float32))
    assert d == pytest.approx(float(expected @ np.asarray(MIX)), abs=1e-4)


def test_training_targets_teach_quality_rows_only_the_falls_short_output() -> None:
    # three tier rows (simple, medium, complex), then two quality rows (weak fell short, weak was fine)
    target = targets([0, 1, 2, None, None], [None, None, None, 1.0, 0.0])
    assert target.values.tolist() == [
        [0, 0, FALLS_SHORT[0]],
        [1, 0, FALLS_SHORT[1]],
        [1, 1, FALLS_SHORT[2]],
        [0, 0, 1],
        [0, 0, 0],
    ]
    # tier rows weigh in all three outputs (complex counts double in P(>= medium)); quality rows only in the last
    assert target.weights.tolist() == [[1, 1, 1], [1, 1, 1], [COMPLEX_WEIGHT, 1, 1], [0, 0, 1], [0, 0, 1]]
    assert target.values.shape == (5, OUTPUTS)


def test_distilled_targets_soften_tier_labels_and_teach_unlabelled_rows_the_teacher() -> None:
    # a simple and a complex tier row, a quality row, then an unlabelled prompt (the transfer set)
    target = targets([0, 2, None, None], [None, None, 1.0, None])
    teacher = np.asarray([[0.2, 0.1, 0.9], [0.6, 0.4, 0.9], [0.7, 0.3, 0.8], [0.9, 0.5, 0.1]], dtype=np.float32)
    got = distilled(target, teacher, tier_rows=2, alpha=0.25, transfer=[3], weight=0.5)
    want = [[0.05, 0.025, FALLS_SHORT[0]], [0.9, 0.85, FALLS_SHORT[2]], [0, 0, 1], [0.9, 0.5, 0]]
    np.testing.assert_allclose(got.values, want, atol=1e-6)
    # the teacher's falls-short output and its opinion of the quality row teach nothing
    assert got.weights.tolist() == [[1, 1, 1], [COMPLEX_WEIGHT, 1, 1], [0, 0, 1], [0.5, 0.5, 0]]
    assert target.values[0].tolist() == [0, 0, FALLS_SHORT[0]]  # the hard targets are left as they were


def test_features_of_a_huge_paste_are_estimated_closely_from_its_ends() -> None:
    # under the exact limit every count reads the whole text; beyond it, the start and the end,
    # scaled: the same numbers within a fraction of a percent, without scanning megabytes
    line = "Dear team, the report is attached? Call 555-0100.\n"
    exact = line * (_EXACT // len(line))
    huge = line * (2_000_000 // len(line))
    for text in (exact, huge):
        got = cheap_features(Prompt(text + "What's the phone number?"))
        words = len(text.split()) + 4
        lines = text.count("\n")
        assert got[FEATURE_NAMES.index("log_words")] == pytest.approx(math.log1p(words) / 4.0, rel=1e-3)
        assert got[FEATURE_NAMES.index("log_lines")] == pytest.approx(math.log1p(lines) / 3.0, rel=1e-3)
        assert got[FEATURE_NAMES.index("questions")] == 1.0
    assert len(exact) <= _EXACT < len(huge)
    view = _counted(huge)[0]
    assert len(view) < 20_000 and huge.startswith(view[:100]) and huge.endswith(view[-100:])
