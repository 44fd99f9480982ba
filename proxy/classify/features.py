"""Cheap, model-free features of a prompt that join the sentence embedding.

Shared by the runtime classifier and `smr train`, so the head sees the same numbers in both.
Every feature is bounded to a few units so one standardisation fits prompts of any size.
"""

from __future__ import annotations

import math
import re

from proxy.classify import Prompt
from proxy.classify.rules import RuleClassifier

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_lines",
    "code_fence",
    "code_symbols",
    "non_ascii",
    "digits",
    "questions",
    "multi_turn",
    "log_turns",
    "rules_score",
    "tail_question",
)

_CODE_SYMBOLS = re.compile(r"[{}();=<>\[\]_]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_DIGITS = re.compile(r"\d")
_RULES = RuleClassifier()
# The keyword rules read at most this many characters (the start and the end), so they cost
# ~0.1 ms even on a long paste.
_RULES_HEAD, _RULES_TAIL = 150, 450
# Words, lines and question marks are counted over the whole text up to this many characters
# (every labelled prompt is shorter) and estimated from its first and last `_SAMPLE` beyond:
# counting over a 1 MB paste took ~17 ms, all of it holding the GIL.
_EXACT = 65536
_SAMPLE = 8192


def _rules_view(prompt: Prompt) -> Prompt:
    text = prompt.text
    if len(text) <= _RULES_HEAD + _RULES_TAIL:
        return prompt
    return Prompt(text[:_RULES_HEAD] + "\n" + text[-_RULES_TAIL:], prompt.turns)


def _counted(text: str) -> tuple[str, float]:
    """The text that whole-text counts read, and the factor that scales them to the whole."""
    if len(text) <= _EXACT:
        return text, 1.0
    view = text[:_SAMPLE] + " " + text[-_SAMPLE:]
    return view, len(text) / len(view)


def cheap_features(prompt: Prompt) -> list[float]:
    """A fixed-length list of floats, in `FEATURE_NAMES` order; under a millisecond for any size."""
    text = prompt.text
    chars = len(text) or 1
    sample = text if chars <= 4000 else text[:2000] + text[-2000:]
    n = len(sample) or 1
    tail = text[-300:]
    view, scale = _counted(text)
    return [
        math.log1p(len(text)) / 5.0,
        math.log1p(len(view.split()) * scale) / 4.0,
        math.log1p(view.count("\n") * scale) / 3.0,
        1.0 if "```" in view else 0.0,
        min(len(_CODE_SYMBOLS.findall(sample)) / n * 10.0, 3.0),
        len(_NON_ASCII.findall(sample)) / n,
        len(_DIGITS.findall(sample)) / n * 5.0,
        min(view.count("?") * scale, 5) / 5.0,
        1.0 if prompt.turns > 1 else 0.0,
        math.log(prompt.turns) / 2.0,
        _RULES.score(_rules_view(prompt)).score,
        # a long paste that ends in a short question is usually a lookup
        1.0 if len(text) > 1500 and "?" in tail else 0.0,
    ]
