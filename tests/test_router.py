"""Routing is pure: the requested model and a score decide the route."""

from __future__ import annotations

import pytest

from proxy import config as configuration
from proxy.classify import Prompt, Scored, extract_prompt
from proxy.classify.rules import RuleClassifier
from proxy.errors import ModelNotFound
from proxy.request import Message
from proxy.router import route, tier_for
from tests.conftest import fake_config

CONFIG = configuration.parse(fake_config("http://127.0.0.1:1/v1"))


@pytest.mark.parametrize(("score", "tier"), [(0.0, "simple"), (0.349, "simple"), (0.35, "medium"), (0.7, "complex")])
def test_thresholds_from_config_decide_the_tier(score: float, tier: str) -> None:
    assert tier_for(score, CONFIG.router.thresholds) == tier
    chosen = route("auto", CONFIG, Scored(score, "test"))
    assert chosen.tier == tier and chosen.models == tuple(CONFIG.tiers.get(tier)) and chosen.score == score


def test_tiers_and_models_by_name() -> None:
    assert route("complex", CONFIG).models == ("big",)
    named = route("mid", CONFIG)
    assert named.tier is None and named.models == ("mid",)


def test_unknown_model_is_404_model_not_found() -> None:
    with pytest.raises(ModelNotFound) as caught:
        route("gpt-5-ultra", CONFIG)
    assert caught.value.status == 404 and caught.value.code == "model_not_found" and caught.value.param == "model"


def test_last_user_message_decides_and_boilerplate_is_stripped() -> None:
    messages = [
        Message("system", "You are a coding agent. " * 50),
        Message("user", "design a distributed lock service"),
        Message("assistant", "Sure..."),
        Message(
            "user",
            [
                {"type": "text", "text": "<system-reminder>\nUse the tools. Be careful.\n</system-reminder>"},
                {"type": "text", "text": "thanks!"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        ),
    ]
    prompt = extract_prompt(messages)
    assert prompt.text == "thanks!"
    assert prompt.turns == 2


def test_a_conversation_without_user_message_uses_the_last_one() -> None:
    assert extract_prompt([Message("system", "Summarise the news.")]).text == "Summarise the news."


def test_rule_classifier_orders_obvious_cases() -> None:
    rules = RuleClassifier()
    easy = [
        "hi!",
        "thanks",
        "translate 'good morning' to French",
        ("Dear team, ... " * 200) + "\nWhat is the phone number in this email?",
    ]
    hard = [
        "Design a rate limiter for 1M rps across 5 regions with strict fairness; discuss the trade-offs.",
        "Prove that the halting problem is undecidable, rigorously.",
        "Find the race condition in this lock-free queue and make it linearizable:\n```c\n...\n```",
    ]
    easy_scores = [rules.score(Prompt(t)).score for t in easy]
    hard_scores = [rules.score(Prompt(t)).score for t in hard]
    assert max(easy_scores) < CONFIG.router.thresholds.medium
    assert min(hard_scores) >= CONFIG.router.thresholds.complex
    assert all(0.0 <= s <= 1.0 for s in easy_scores + hard_scores)
