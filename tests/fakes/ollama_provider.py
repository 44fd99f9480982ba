"""A fake Ollama server that replays the recorded fixtures in tests/fixtures/ollama.

`POST /api/chat`, streamed as NDJSON unless `"stream": false`; the model name picks the recording:

    llama-text             text.json, or text.ndjson when streamed
    llama-tools            tools.json / tools.ndjson (tool calls)
    llama-stream-error     stream_error.ndjson: an `{"error": ...}` line after the first words
    llama-error-<name>     error_<name>.json with that error's status
"""

from __future__ import annotations

from typing import Any

from tests.fakes.wire import FIXTURES, Answer, FixtureServer, pieces

DIR = FIXTURES / "ollama"
ERROR_STATUS = {"not_found": 404, "bad_request": 400, "prompt_too_long": 400}


class FakeOllama(FixtureServer):
    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> Answer:
        if method != "POST" or path != "/api/chat":
            return Answer(404, b"404 page not found", content_type="text/plain")
        model = str(body.get("model", ""))
        if model.startswith("llama-error-"):
            name = model.removeprefix("llama-error-")
            return Answer(ERROR_STATUS[name], (DIR / f"error_{name}.json").read_bytes())
        stem = model.removeprefix("llama-").replace("-", "_")
        if body.get("stream", True):
            data = (DIR / f"{stem}.ndjson").read_bytes()
            return Answer(200, content_type="application/x-ndjson", pieces=pieces(data))
        return Answer(200, (DIR / f"{stem}.json").read_bytes())
