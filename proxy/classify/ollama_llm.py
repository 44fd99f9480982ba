"""An optional classifier that asks a small local model, served by Ollama, for the tier.

Contract: `score` never raises for a model problem. It asks `POST /api/chat` (through the
`ollama` client, which is the one module here that owns it) for one word, simple|medium|complex,
within `timeout_s`; the word becomes a score in the middle of that tier's band under the
configured thresholds, so the router picks the same tier back. On a timeout, a refused
connection, an error status or an answer that names no tier it returns the fallback
classifier's score, with the reason saying so. Blocking I/O, so `inline = False`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from proxy.classify import Classifier, Prompt, Scored
from proxy.classify.rules import RuleClassifier
from proxy.config import Thresholds

log = logging.getLogger("smr")

SYSTEM = (
    "You route chat requests to a model tier. Answer with exactly one word.\n"
    "simple: greetings, chit-chat, fact lookups, definitions, conversions, arithmetic, grammar fixes, "
    "short rewrites or translations, extracting a field from pasted text, textbook one-line code.\n"
    "medium: several steps or some craft, routine for a professional: a function with real logic, "
    "fixing a common bug, SQL with joins, summaries, essays, standard word problems, comparisons.\n"
    "complex: a mid-size model would likely fail: system design at scale, hard algorithms, concurrency, "
    "proofs, research-level math, security analysis, deep legal/medical/financial analysis.\n"
    "Length is not difficulty. Language is not difficulty."
)
MAX_CHARS = 4000
_WORD = re.compile(r"\b(simple|medium|complex)\b", re.IGNORECASE)


def band_score(tier: str, thresholds: Thresholds) -> float:
    """A score that `proxy.router.tier_for` maps back to `tier`: the middle of its band."""
    if tier == "simple":
        return thresholds.medium / 2
    if tier == "medium":
        return (thresholds.medium + thresholds.complex) / 2
    return (thresholds.complex + 1.0) / 2


class OllamaClassifier:
    name = "ollama"
    inline = False
    loop_chars = 0  # it waits on a server

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float,
        thresholds: Thresholds,
        fallback: Classifier | None = None,
    ) -> None:
        import httpx  # only for the exception types the ollama client lets through
        import ollama

        self.model = model
        self.thresholds = thresholds
        self.fallback = fallback or RuleClassifier()
        self._client = ollama.Client(host=base_url, timeout=timeout_s)
        self._errors: tuple[type[BaseException], ...] = (
            ollama.ResponseError,
            ollama.RequestError,
            httpx.HTTPError,  # timeouts among them
            OSError,  # connection refused
            ValueError,  # a reply that is not the JSON Ollama sends
        )

    def _ask(self, text: str) -> str:
        if len(text) > MAX_CHARS:
            text = text[: MAX_CHARS // 4] + "\n…\n" + text[-(3 * MAX_CHARS) // 4 :]
        reply: Any = self._client.chat(
            model=self.model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Request:\n{text}\n\nTier?"}],
            stream=False,
            options={"temperature": 0, "num_predict": 8},
            keep_alive="30m",
        )
        content: str = reply.message.content or ""
        return content

    def score(self, prompt: Prompt) -> Scored:
        try:
            answer = self._ask(prompt.text)
        except self._errors as exc:  # the model is optional: any failure routes by the fallback
            log.warning("ollama classifier failed (%s); using %s", type(exc).__name__, self.fallback.name)
            return self._fall_back(prompt, type(exc).__name__)
        found = _WORD.search(answer)
        if found is None:
            return self._fall_back(prompt, "no tier in answer")
        tier = found.group(1).lower()
        return Scored(score=band_score(tier, self.thresholds), reason=f"ollama {self.model}: {tier}")

    def _fall_back(self, prompt: Prompt, why: str) -> Scored:
        scored = self.fallback.score(prompt)
        return Scored(score=scored.score, reason=f"ollama unavailable ({why}); {scored.reason}")
