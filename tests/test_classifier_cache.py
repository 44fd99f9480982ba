"""The LRU prompt cache: one inner call per distinct cleaned prompt, bounded size."""

from __future__ import annotations

from proxy.classify import Prompt, Scored
from proxy.classify.cache import LOOP_CHARS, CachedClassifier


class Counting:
    name = "counting"
    inline = False
    loop_chars = 7

    def __init__(self) -> None:
        self.calls: list[str] = []

    def score(self, prompt: Prompt) -> Scored:
        self.calls.append(prompt.text)
        return Scored(score=len(self.calls) / 10, reason="counted")


def test_hits_skip_the_inner_classifier() -> None:
    inner = Counting()
    cache = CachedClassifier(inner, size=8)
    first = cache.score(Prompt("hello"))
    assert cache.score(Prompt("hello")) == first
    assert inner.calls == ["hello"]
    assert (cache.hits, cache.misses) == (1, 1)
    assert (cache.name, cache.inline, cache.loop_chars) == ("counting", False, 7)


def test_turn_count_is_part_of_the_key() -> None:
    inner = Counting()
    cache = CachedClassifier(inner)
    cache.score(Prompt("now make it lock-free", turns=1))
    cache.score(Prompt("now make it lock-free", turns=3))
    assert len(inner.calls) == 2


def test_least_recently_used_is_evicted() -> None:
    inner = Counting()
    cache = CachedClassifier(inner, size=2)
    cache.score(Prompt("a"))
    cache.score(Prompt("b"))
    cache.score(Prompt("a"))  # a is now the most recent
    cache.score(Prompt("c"))  # evicts b
    assert len(cache) == 2
    cache.score(Prompt("a"))
    cache.score(Prompt("b"))
    assert inner.calls == ["a", "b", "c", "b"]


def test_cached_answers_only_what_was_scored_and_never_calls_the_model() -> None:
    inner = Counting()
    cache = CachedClassifier(inner)
    assert cache.cached(Prompt("hello")) is None
    assert inner.calls == []
    scored = cache.score(Prompt("hello"))
    assert cache.cached(Prompt("hello")) == scored
    assert cache.cached(Prompt("hello", turns=2)) is None
    assert inner.calls == ["hello"]
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_huge_prompt_is_looked_up_in_score_not_on_the_loop() -> None:
    inner = Counting()
    cache = CachedClassifier(inner)
    paste = Prompt("x" * (LOOP_CHARS + 1) + " what is the phone number?")
    scored = cache.score(paste)
    assert cache.cached(paste) is None  # not hashed on the event loop
    assert cache.score(paste) == scored  # but still a hit where the worker thread asks
    assert inner.calls == [paste.text]
    edge = Prompt("x" * LOOP_CHARS)
    cache.score(edge)
    assert cache.cached(edge) is not None  # up to the limit, the loop still asks
