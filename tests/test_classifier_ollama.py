"""The Ollama classifier against a fake Ollama HTTP server on 127.0.0.1 (wire format of /api/chat)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from proxy.classify import Prompt, Scored
from proxy.classify.ollama_llm import OllamaClassifier, band_score
from proxy.config import Thresholds
from proxy.router import tier_for

THRESHOLDS = Thresholds(medium=0.3, complex=0.6)


class FakeOllamaChat(BaseHTTPRequestHandler):
    """`model` picks the behaviour: `word-<text>` answers <text>, `slow` sleeps, `missing` is a 404."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.requests.append(body)
        model = body["model"]
        if model == "slow":
            time.sleep(1.0)
        if model == "missing":
            self._send(404, {"error": f"model '{model}' not found"})
            return
        content = model.removeprefix("word-") if model.startswith("word-") else "medium"
        self._send(
            200,
            {
                "model": model,
                "created_at": "2025-08-01T00:00:00Z",
                "message": {"role": "assistant", "content": content},
                "done": True,
                "done_reason": "stop",
            },
        )

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def ollama_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllamaChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Fallback:
    name = "fallback"
    inline = True
    loop_chars = 0

    def score(self, prompt: Prompt) -> Scored:
        return Scored(score=0.42, reason="fallback")


def _classifier(url: str, model: str, timeout: float = 2.0) -> OllamaClassifier:
    return OllamaClassifier(url, model, timeout_s=timeout, thresholds=THRESHOLDS, fallback=Fallback())


@pytest.mark.parametrize("word", ["simple", "medium", "complex"])
def test_the_models_word_becomes_that_tier(ollama_url: str, word: str) -> None:
    scored = _classifier(ollama_url, f"word-{word}").score(Prompt("anything"))
    assert tier_for(scored.score, THRESHOLDS) == word
    assert scored.reason == f"ollama word-{word}: {word}"


def test_the_request_is_a_non_streamed_chat(ollama_url: str) -> None:
    _classifier(ollama_url, "word-Complex.").score(Prompt("prove it <system-reminder>x</system-reminder>"))
    sent = FakeOllamaChat.requests[-1]
    assert sent["stream"] is False
    assert sent["messages"][0]["role"] == "system"
    assert "prove it" in sent["messages"][-1]["content"]


def test_timeout_falls_back(ollama_url: str) -> None:
    started = time.perf_counter()
    scored = _classifier(ollama_url, "slow", timeout=0.2).score(Prompt("hi"))
    assert time.perf_counter() - started < 0.9
    assert scored.score == 0.42
    assert scored.reason.startswith("ollama unavailable") and "fallback" in scored.reason


def test_error_status_and_gibberish_fall_back(ollama_url: str) -> None:
    assert _classifier(ollama_url, "missing").score(Prompt("hi")).score == 0.42
    assert "no tier" in _classifier(ollama_url, "word-banana").score(Prompt("hi")).reason


def test_connection_refused_falls_back() -> None:
    scored = _classifier("http://127.0.0.1:9", "word-simple", timeout=0.5).score(Prompt("hi"))
    assert scored.score == 0.42


def test_band_scores_sit_inside_their_tiers() -> None:
    for tier in ("simple", "medium", "complex"):
        assert tier_for(band_score(tier, THRESHOLDS), THRESHOLDS) == tier
