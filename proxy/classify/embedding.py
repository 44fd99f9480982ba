"""The learned classifier: all-MiniLM-L6-v2 (int8 ONNX) embedding + cheap features → a small head.

Contract: `score` returns d in [0, 1], how likely the cheap model falls short; the router cuts it
into tiers with the configured thresholds. Files live in `proxy/classify/model/` (built by
`smr train`): `model.onnx`, `tokenizer.json`, `head.json`, `meta.json`. Constructing the
classifier only checks that they exist; onnxruntime, tokenizers and numpy are imported and the
session is built on first use (or `load()`), never at import. Scoring is CPU-bound, so
`inline = False`: the server runs it in a worker thread, or on the event loop for a short ASCII
text while no other chat request is in flight (`loop_chars`). Safe to call from several threads.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.classify import Prompt, Scored
from proxy.classify.features import FEATURE_NAMES, cheap_features
from proxy.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]

MODEL_DIR = Path(__file__).with_name("model")
FILES = ("model.onnx", "tokenizer.json", "head.json", "meta.json")
# Long prompts are cut to their first and last tokens: the task is usually stated at one end.
MAX_TOKENS = 128
HEAD_TOKENS = 32
# Two intra-op threads cut a 128-token prompt from ~11 to ~7 ms on the fused int8 graph (Intel with
# VNNI; AMD with AVX2 only: ~17 to ~10) and short prompts about break even; more threads gain
# little for one sequence this small.
THREADS = 2
# Characters kept before tokenising (a quarter from the start, the rest from the end): enough for
# 128 word pieces of prose or code, and tokenising a megabyte paste costs no more than a paragraph.
MAX_CHARS = 1000
# How a prompt becomes word pieces (meta.json's `view`; a model is trained on one view and served
# with it). "ends": the clipped text's first `head` and last word pieces. "ask": the same, except for
# a prompt longer than MAX_CHARS that opens or closes with a paragraph of at most ASK_CHARS (the
# ask: "what's the phone number?" above or below a pasted email): that paragraph whole and only
# PASTE_TOKENS word pieces of what lies between (its first and last), so the ask is not a few
# word pieces among 128 of paste.
VIEWS = ("ends", "ask")
ASK_CHARS = 400
PASTE_TOKENS = 32
_ASK_END = re.compile(r"\n[ \t]*\n|\n(?=[ \t]*```)")  # a blank line, or a code fence opening
_ASK_START = re.compile(r"\n[ \t]*\n|```[ \t]*\n")  # a blank line, or a code fence closing
# A pool thread that has slept must be woken, and on a VM whose vCPU has halted that can cost
# milliseconds: on the 2-vCPU development guest a 14-token prompt took 2.1-2.6 ms on two threads back
# to back but 6.5-8.8 ms after 8-15 ms idle, against 4.2-4.9 ms on one thread (`python
# bench/classifier_cold.py --threads`; the two cross between 5 and 6 ms idle). From 48-64 tokens on,
# two threads win even cold. So a short prompt that comes after an idle gap runs on a second,
# single-threaded session (~30 MiB more RSS), and everything else on the pool.
COLD_GAP_S = 0.005
COLD_MAX_TOKENS = 48
# An ASCII text this short is at most ~60 word pieces of prose (128 at worst, one per character):
# ~0.6-1.5 ms on one thread. On an event loop with no other chat request in flight, scoring it there
# saves handing it to a worker thread and back, 0.2-0.3 ms on this VM (`python bench/ab_bench.py
# auto`, bench/README.md, "A pool that has slept"); a request that arrives meanwhile waits that long at most.
LOOP_CHARS = 200


class ClassifierUnavailable(ConfigError):
    """The learned classifier's files are missing or unreadable; the app falls back to rules."""


def missing_files(model_dir: Path) -> list[str]:
    return [name for name in FILES if not (model_dir / name).is_file()]


def _clip_text(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return text[: MAX_CHARS // 4] + "\n…\n" + text[-(3 * MAX_CHARS) // 4 :]


def clip_ids(ids: list[int], max_tokens: int = MAX_TOKENS, head: int = HEAD_TOKENS) -> list[int]:
    """Keep [CLS], the first `head` tokens, and the last tokens up to [SEP]: `max_tokens` in all."""
    if len(ids) <= max_tokens:
        return ids
    tail = max_tokens - 1 - head
    return ids[: 1 + head] + ids[-tail:]


@dataclass(frozen=True)
class Cut:
    """How a prompt becomes the word pieces the encoder reads. A model is trained with one cut and
    served with it: `smr train` writes it into meta.json, the encoder reads it back from there."""

    max_tokens: int = MAX_TOKENS
    head_tokens: int = HEAD_TOKENS
    view: str = "ends"  # one of VIEWS
    paste_tokens: int = PASTE_TOKENS  # the "ask" view's share of a paste

    def __post_init__(self) -> None:
        if self.view not in VIEWS or not 0 <= self.head_tokens < self.max_tokens - 1:
            raise ValueError(f"not a cut: {self}")
        if self.view == "ask" and not 0 <= self.paste_tokens <= self.max_tokens - 2:
            raise ValueError(f"not a cut: {self}")

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> Cut:
        """The cut in a model's meta.json; a key it lacks (older models) takes the default."""
        return cls(
            max_tokens=int(meta.get("max_tokens", MAX_TOKENS)),
            head_tokens=int(meta.get("head_tokens", HEAD_TOKENS)),
            view=str(meta.get("view", "ends")),
            paste_tokens=int(meta.get("paste_tokens", PASTE_TOKENS)),
        )

    def meta(self) -> dict[str, Any]:
        return asdict(self)


def split_ask(text: str) -> tuple[str, str, str]:
    """(ask before, paste, ask after) of a text longer than twice ASK_CHARS; "" where an end has no
    paragraph of at most ASK_CHARS. Reads only the first and last ASK_CHARS characters."""
    text = text.strip()
    opening = _ASK_END.search(text, 0, ASK_CHARS + 1)
    closings = list(_ASK_START.finditer(text, max(len(text) - ASK_CHARS - 4, 0)))
    closing = closings[-1] if closings else None
    before = text[: opening.start()].strip() if opening else ""
    after = text[closing.end() :].strip() if closing else ""
    return before, text[opening.end() if opening else 0 : closing.start() if closing else len(text)], after


def _ask_ids(tokenizer: Any, text: str, max_tokens: int, paste_tokens: int) -> list[int] | None:
    before, paste, after = split_ask(text)
    if not before and not after:
        return None

    def pieces(part: str) -> list[int]:
        return tokenizer.encode(part, add_special_tokens=False).ids if part else []

    room = max_tokens - 2 - paste_tokens
    first, last = pieces(before), pieces(after)
    n_first = min(len(first), max(room // 2, room - len(last)))
    n_last = min(len(last), room - n_first)
    middle = pieces(_clip_text(paste))
    if len(middle) > paste_tokens:
        middle = middle[: paste_tokens // 2] + middle[len(middle) - (paste_tokens - paste_tokens // 2) :]
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [cls, *first[:n_first], *middle, *last[len(last) - n_last :], sep]


def token_ids(tokenizer: Any, text: str, cut: Cut = Cut()) -> list[int]:
    """The word-piece ids the encoder reads for `text` (`smr train` fine-tunes on exactly these)."""
    if cut.view == "ask" and len(text) > MAX_CHARS:
        asked = _ask_ids(tokenizer, text, cut.max_tokens, cut.paste_tokens)
        if asked is not None:
            return asked
    ids: list[int] = tokenizer.encode(_clip_text(text) or " ").ids
    return clip_ids(ids, cut.max_tokens, cut.head_tokens)


class Encoder:
    """Text → L2-normalised mean-pooled sentence embedding, as sentence-transformers computes it."""

    def __init__(
        self,
        model_dir: Path,
        threads: int = 1,
        spin: bool = False,
        cold_single: bool = True,
    ) -> None:
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._np = np
        meta = model_dir / "meta.json"
        self.cut = Cut.of(json.loads(meta.read_text())) if meta.is_file() else Cut()
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.threads = threads
        self.session = _session(ort, model_dir, threads, spin)
        # Short prompts after an idle gap run here (see COLD_GAP_S); spinning pools stay warm.
        self.single = _session(ort, model_dir, 1, spin) if cold_single and threads > 1 and not spin else None
        # The graph pools and normalises (`smr train` since the fused export); older ones give hidden states.
        self.pooled = "sentence_embedding" in {out.name for out in self.session.get_outputs()}
        self.last_threads = 0  # threads the last run used
        self._idle_since = 0.0  # time.monotonic() when the last run ended

    def warm(self) -> None:
        """One run on each session: the first run of a session allocates its buffers."""
        for session in (self.session, self.single):
            if session is not None:
                self._run(session, token_ids(self.tokenizer, "warm-up"))

    def encode(self, text: str) -> Vector:
        ids = token_ids(self.tokenizer, text, self.cut)
        session = self.session
        if self.single is not None and len(ids) < COLD_MAX_TOKENS and time.monotonic() - self._idle_since > COLD_GAP_S:
            session = self.single
        vector = self._run(session, ids)
        self._idle_since = time.monotonic()
        self.last_threads = 1 if session is self.single else self.threads
        return vector

    def _run(self, session: Any, ids: list[int]) -> Vector:
        np = self._np
        input_ids = np.asarray([ids], dtype=np.int64)
        feed = {
            "input_ids": input_ids,
            "attention_mask": np.ones_like(input_ids),
            "token_type_ids": np.zeros_like(input_ids),
        }
        if self.pooled:
            (embedded,) = session.run(["sentence_embedding"], feed)
            return embedded[0]  # type: ignore[no-any-return]
        (hidden,) = session.run(["last_hidden_state"], feed)
        pooled = hidden[0].mean(axis=0)
        vector: Vector = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return vector


def _session(ort: Any, model_dir: Path, threads: int, spin: bool) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # The pool threads spin while a run lasts; left to onnxruntime's default they go on spinning
    # after it, ~50 ms of a core burned per classification that the event loop, the ledger and
    # the provider needed (`bench/classifier_cold.py`). Stopping them costs a wake-up per run.
    if not spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])


class Head:
    """Standardise [embedding ⊕ cheap features], then linear (or one ReLU layer) → k sigmoids → d.

    head.json: {"mean": [F], "scale": [F], "layers": [{"w": [[F]…], "b": […]}…], "mix": [k]}.
    d = clip(Σ mix_i · sigmoid(z_i), 0, 1). The shipped head has three outputs, P(≥ medium),
    P(complex) and P(weak model falls short), mixed 0.5 : 0.5 : 0.3 (normalised to sum to 1).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        import numpy as np

        self._np = np
        self.mean = np.asarray(spec["mean"], dtype=np.float32)
        self.scale = np.asarray(spec["scale"], dtype=np.float32)
        self.layers = [
            (np.asarray(layer["w"], dtype=np.float32), np.asarray(layer["b"], dtype=np.float32))
            for layer in spec["layers"]
        ]
        self.mix = np.asarray(spec["mix"], dtype=np.float32)

    def outputs(self, x: Vector) -> Vector:
        np = self._np
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        probs: Vector = (1.0 / (1.0 + np.exp(-h))).astype(np.float32)
        return probs

    def difficulty(self, x: Vector) -> float:
        return float(min(max(float(self.outputs(x) @ self.mix), 0.0), 1.0))


def featurize(encoder: Encoder, prompt: Prompt) -> Vector:
    """[embedding ⊕ cheap features]: what the head reads, and what `smr train` fits on."""
    np = encoder._np
    extra = np.asarray(cheap_features(prompt), dtype=np.float32)
    vector: Vector = np.concatenate([encoder.encode(prompt.text), extra])
    return vector


class EmbeddingClassifier:
    name = "embedding"
    inline = False
    loop_chars = LOOP_CHARS

    def __init__(
        self, model_dir: Path = MODEL_DIR, *, threads: int = THREADS, spin: bool = False, cold_single: bool = True
    ) -> None:
        missing = missing_files(model_dir)
        if missing:
            raise ClassifierUnavailable(
                f"the embedding classifier needs {', '.join(missing)} in {model_dir}; "
                "reinstall smart-model-router, or rebuild them with `pip install -e '.[train]' && smr train`, "
                "or set router.classifier: rules"
            )
        self.model_dir = model_dir
        self.threads = max(min(threads, os.cpu_count() or 1), 1)
        self.spin = spin
        self.cold_single = cold_single
        self._lock = threading.Lock()
        self._encoder_: Encoder | None = None
        self._head: Head | None = None
        self.meta: dict[str, Any] = {}

    def load(self) -> None:
        """Read the files, build the sessions and run each once now; otherwise done on first use."""
        self._encoder().warm()

    def _encoder(self) -> Encoder:
        # One session for all threads: onnxruntime runs concurrent calls, each on its own core.
        encoder = self._encoder_
        if encoder is None:
            with self._lock:
                if self._encoder_ is None:
                    try:
                        self.meta = json.loads((self.model_dir / "meta.json").read_text())
                        self._head = Head(json.loads((self.model_dir / "head.json").read_text()))
                        self._encoder_ = Encoder(self.model_dir, self.threads, self.spin, self.cold_single)
                    except (OSError, ValueError, KeyError, RuntimeError) as exc:
                        raise ClassifierUnavailable(
                            f"cannot load the embedding classifier from {self.model_dir}: {exc}"
                        ) from exc
                encoder = self._encoder_
        return encoder

    def score(self, prompt: Prompt) -> Scored:
        x = featurize(self._encoder(), prompt)
        assert self._head is not None
        d = self._head.difficulty(x)
        return Scored(score=round(d, 4), reason=f"embedding d={d:.2f}")


__all__ = [
    "FEATURE_NAMES",
    "MODEL_DIR",
    "ClassifierUnavailable",
    "Cut",
    "EmbeddingClassifier",
    "Encoder",
    "featurize",
    "token_ids",
]
