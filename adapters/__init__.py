"""Provider adapters: pure translations between OpenAI's chat wire format and each provider's.

An adapter is a module of pure functions satisfying `adapters.base.Adapter`; it does no I/O and
imports neither httpx nor the server. `ADAPTERS` is the registry the config names them by.
"""

from __future__ import annotations

from typing import Any

from adapters import anthropic, gemini, ollama, openai
from adapters.base import Adapter

ADAPTERS: dict[str, Adapter[Any]] = {
    "openai": openai,
    "anthropic": anthropic,
    "gemini": gemini,
    "ollama": ollama,
}

__all__ = ["ADAPTERS", "Adapter"]
