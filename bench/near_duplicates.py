"""Near duplicates between labelled batches: `python bench/near_duplicates.py data/tiers/part_g.jsonl`.

Compares each row of the given batches with every row of the other `data/tiers/part_*.jsonl` files
(and with the rows before it in its own batch) on the last message: the same text, or word sets
with a Jaccard similarity of at least `--min` (0.7). A new batch is checked this way before it is
committed, and its duplicates dropped (README, "Routing"); the exit status is 1 if any is found.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import read_jsonl

TIERS = Path(__file__).resolve().parents[1] / "data" / "tiers"
WORD = re.compile(r"\w+")


def last_message(obj: dict[str, object]) -> str:
    messages = obj["messages"]
    assert isinstance(messages, list)
    return str(messages[-1]["content"]).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("batches", nargs="+", type=Path)
    parser.add_argument("--min", type=float, default=0.7, help="word-set Jaccard similarity that counts")
    args = parser.parse_args()
    mine = {path.resolve() for path in args.batches}
    seen: list[tuple[str, str, set[str]]] = []
    for path in sorted(TIERS.glob("part_*.jsonl")):
        if path.resolve() not in mine:
            seen += [
                (str(o["id"]), text, set(WORD.findall(text.lower())))
                for o in read_jsonl(path)
                if (text := last_message(o))
            ]
    found = 0
    for path in args.batches:
        for obj in read_jsonl(path):
            text = last_message(obj)
            words = set(WORD.findall(text.lower()))
            for other, other_text, other_words in seen:
                same = text == other_text
                if same or (words and other_words and len(words & other_words) / len(words | other_words) >= args.min):
                    print(f"{obj['id']} ~ {other}: {text[:80]!r}")
                    found += 1
                    break
            seen.append((str(obj["id"]), text, words))
    print(f"{found} near duplicates", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
