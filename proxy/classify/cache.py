"""An LRU cache around any classifier, keyed by a hash of the cleaned prompt.

Agents resend the same last message (retries, tool loops), so a hit saves a whole model run.
The key is BLAKE2b of the text and the turn count; the text itself is not kept. Thread-safe:
the server scores in worker threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from proxy.classify import Classifier, Prompt, Scored

# The longest text `cached` hashes on the event loop (~0.15 ms of hashing here; 8 MB took ~19 ms).
LOOP_CHARS = 65536


def prompt_key(prompt: Prompt) -> bytes:
    return hashlib.blake2b(f"{prompt.turns}\x00{prompt.text}".encode(), digest_size=16).digest()


class CachedClassifier:
    """Scores through `inner` once per distinct prompt, keeping at most `size` results."""

    def __init__(self, inner: Classifier, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self.inner = inner
        self.name = inner.name
        self.inline = inner.inline
        self.loop_chars = inner.loop_chars
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, Scored] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, prompt: Prompt) -> Scored | None:
        """The stored result, if any: microseconds, so the server asks on the event loop first.

        None, without looking, for a text longer than `LOOP_CHARS`: hashing 8 MB holds the loop for
        ~19 ms; `score` looks it up in the worker thread instead, where the hash releases the GIL.
        """
        if len(prompt.text) > LOOP_CHARS:
            return None
        return self._get(prompt_key(prompt))

    def _get(self, key: bytes) -> Scored | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return found

    def score(self, prompt: Prompt) -> Scored:
        key = prompt_key(prompt)
        found = self._get(key)
        if found is not None:
            return found
        with self._lock:
            self.misses += 1
        scored = self.inner.score(prompt)  # outside the lock: other threads keep scoring meanwhile
        with self._lock:
            self._entries[key] = scored
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return scored

    def __len__(self) -> int:
        return len(self._entries)
