"""A fake Anthropic Messages API that replays the recorded fixtures in tests/fixtures/anthropic.

`POST /v1/messages`; the model name picks the recording:

    claude-text            text.json, or text.sse when streamed
    claude-tools           tools.json / tools.sse (thinking, text and two tool calls)
    claude-stream-error    stream_error.sse: an `error` event after the first words
    claude-error-<name>    error_<name>.json with that error's status (429 adds retry-after)

A request without `x-api-key: sk-ant-fake` or `anthropic-version` gets the recorded 401.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.wire import FIXTURES, Answer, FixtureServer, pieces

DIR = FIXTURES / "anthropic"
ERROR_STATUS = {"overloaded": 529, "rate_limit": 429, "prompt_too_long": 400, "auth": 401, "bad_request": 400}
KEY = "sk-ant-fake"


def _error(name: str) -> Answer:
    extra = {"retry-after": "12"} if name == "rate_limit" else {}
    return Answer(ERROR_STATUS[name], (DIR / f"error_{name}.json").read_bytes(), headers=extra)


class FakeAnthropic(FixtureServer):
    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        if method != "POST" or path != "/v1/messages":
            return Answer(404, b'{"type":"error","error":{"type":"not_found_error","message":"Not found"}}')
        if headers.get("x-api-key") != KEY or not headers.get("anthropic-version"):
            return _error("auth")
        model = str(body.get("model", ""))
        if model.startswith("claude-error-"):
            return _error(model.removeprefix("claude-error-"))
        stem = model.removeprefix("claude-").replace("-", "_")
        if body.get("stream"):
            return Answer(200, content_type="text/event-stream", pieces=pieces((DIR / f"{stem}.sse").read_bytes()))
        return Answer(200, (DIR / f"{stem}.json").read_bytes())
