"""Classification: from the conversation, a difficulty score in [0, 1].

A classifier only scores; `proxy.router` turns the score into a tier with the configured
thresholds. Classifiers are pure and synchronous; heavy ones declare `inline = False` and the
server runs them off the event loop, except that an ASCII text of at most `loop_chars` characters
is scored on the loop when no other chat request is in flight (a worker thread's wake-up costs more
than such a run holds the loop).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec


class Prompt(msgspec.Struct, frozen=True):
    """What a classifier sees: the last user message, cleaned, and where it sits."""

    text: str
    turns: int = 1  # user messages in the conversation, this one included


class Scored(msgspec.Struct, frozen=True):
    score: float  # 0 = the cheapest model surely does it, 1 = needs the strongest
    reason: str  # a few words for the x-router-reason header


class Classifier(Protocol):
    name: str
    inline: bool  # True when scoring is cheap enough to run on the event loop
    loop_chars: int  # when not inline: the longest ASCII text worth scoring on an idle loop (0: none)

    def score(self, prompt: Prompt) -> Scored: ...


# Coding agents wrap the user's words in reminders and tool chatter that say nothing about the task.
_BOILERPLATE = re.compile(
    r"<(system-reminder|system_reminder|environment_details|context)>.*?</\1>", re.DOTALL | re.IGNORECASE
)


def message_text(content: Any) -> str:
    """The text of a message's `content`, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def extract_prompt(messages: Sequence[Any]) -> Prompt:
    """The last user message, with agent boilerplate stripped; any last message if none is a user's.

    `messages` holds objects with `role` and `content` attributes (the request view).
    """
    turns = sum(1 for m in messages if m.role == "user")
    chosen = next((m for m in reversed(messages) if m.role == "user"), messages[-1] if messages else None)
    text = message_text(chosen.content) if chosen is not None else ""
    cleaned = _BOILERPLATE.sub(" ", text).strip()
    return Prompt(text=cleaned or text.strip(), turns=max(turns, 1))
