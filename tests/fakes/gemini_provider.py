"""A fake Gemini API that replays the recorded fixtures in tests/fixtures/gemini.

`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`; the model
name picks the recording:

    gemini-text            text.json, or text.sse when streamed
    gemini-tools           tools.json / tools.sse (function calls)
    gemini-stream-error    stream_error.sse: an error object after the first words
    gemini-error-<name>    error_<name>.json with that error's status

A request without `x-goog-api-key: AIza-fake` gets the recorded invalid-key answer (HTTP 400).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.wire import FIXTURES, Answer, FixtureServer, pieces

DIR = FIXTURES / "gemini"
ERROR_STATUS = {"rate_limit": 429, "auth": 400, "prompt_too_long": 400, "overloaded": 503, "bad_request": 400}
KEY = "AIza-fake"
PREFIX = "/v1beta/models/"


class FakeGemini(FixtureServer):
    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        model, _, verb = path.removeprefix(PREFIX).partition(":")
        if method != "POST" or not path.startswith(PREFIX) or not verb:
            return Answer(404, b'{"error":{"code":404,"message":"Not found","status":"NOT_FOUND"}}')
        if headers.get("x-goog-api-key") != KEY:
            return Answer(400, (DIR / "error_auth.json").read_bytes())
        if model.startswith("gemini-error-"):
            name = model.removeprefix("gemini-error-")
            return Answer(ERROR_STATUS[name], (DIR / f"error_{name}.json").read_bytes())
        stem = model.removeprefix("gemini-").replace("-", "_")
        if verb == "streamGenerateContent?alt=sse":
            return Answer(200, content_type="text/event-stream", pieces=pieces((DIR / f"{stem}.sse").read_bytes()))
        if verb == "generateContent":
            return Answer(200, (DIR / f"{stem}.json").read_bytes())
        return Answer(400, b'{"error":{"code":400,"message":"unknown method","status":"INVALID_ARGUMENT"}}')
