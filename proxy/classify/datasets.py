"""Labelled prompts on disk: reading them, and the fixed train/validation splits `smr train` uses.

Rows are JSONL objects with `messages` (OpenAI chat messages, the last the user's) and either
`tier` (simple|medium|complex) or `score_strong` and `score_weak` in [0, 1]. Splits depend only
on each row's id (a SHA-256 rank inside its stratum), so they are the same on every machine and
a row never moves between train and validation when other rows are added elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from proxy.classify import Prompt, extract_prompt
from proxy.config import TIERS


class Message(msgspec.Struct, frozen=True):
    role: str
    content: Any = None


class Row(msgspec.Struct, frozen=True):
    """One labelled prompt: a tier label, or the two models' scores, or neither (prompt only)."""

    id: str
    prompt: Prompt
    tier: str | None = None
    score_strong: float | None = None
    score_weak: float | None = None
    category: str = ""
    source: str = ""
    translation_of: str = ""  # the id of the row this one translates (data/tiers/part_l.jsonl)


class DataError(ValueError):
    """A labelled file is unreadable or a line breaks the format; the message names file and line."""


def prompt_of(messages: Sequence[Any]) -> Prompt:
    """The classifier's view of an OpenAI `messages` list of dicts."""
    return extract_prompt([Message(str(m.get("role", "")), m.get("content")) for m in messages])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        # split on newlines only: str.splitlines() also splits inside JSON strings holding U+2028, U+0085, ...
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        out.append(obj)
    return out


def to_row(obj: dict[str, Any], where: str) -> Row:
    messages = obj.get("messages")
    if messages is None and isinstance(obj.get("turns"), list):  # Arena files: a list of user turns
        messages = [{"role": "user", "content": t} for t in obj["turns"]]
    if messages is None and isinstance(obj.get("prompt"), str):
        messages = [{"role": "user", "content": obj["prompt"]}]
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: `messages` must be a non-empty list")
    tier = obj.get("tier")
    if tier is not None and tier not in TIERS:
        raise DataError(f"{where}: tier must be one of {', '.join(TIERS)}, got {tier!r}")
    strong, weak = obj.get("score_strong"), obj.get("score_weak")
    if (strong is None) != (weak is None):
        raise DataError(f"{where}: give both score_strong and score_weak, or neither")
    return Row(
        id=str(obj.get("id", where)),
        prompt=prompt_of(messages),
        tier=tier,
        score_strong=None if strong is None else float(strong),
        score_weak=None if weak is None else float(weak),
        category=str(obj.get("category") or ""),
        source=str(obj.get("source") or ""),
        translation_of=str(obj.get("translation_of") or ""),
    )


def load_rows(path: Path) -> list[Row]:
    return [to_row(obj, f"{path}:{i}") for i, obj in enumerate(read_jsonl(path), 1)]


def _rank(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_ids(items: Iterable[tuple[str, str]], share: float) -> set[str]:
    """The ids held out: in each stratum, the `round(share·n)` ids with the smallest SHA-256.

    `items` are (id, stratum) pairs.
    """
    strata: dict[str, list[str]] = defaultdict(list)
    for ident, stratum in items:
        strata[stratum].append(ident)
    held: set[str] = set()
    for ids in strata.values():
        ids.sort(key=_rank)
        held.update(ids[: round(share * len(ids))])
    return held


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_jsonl(path: Path, objs: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)
    path.write_text(text, encoding="utf-8")
