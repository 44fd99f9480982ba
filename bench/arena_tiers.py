"""Which tier the shipped classifier gives hard real prompts it never trained on.

    python bench/arena_tiers.py [FILE.jsonl ...]   # default: ../shared/data/arena-hard-v2.0_prompts.jsonl

The arena-hard files (see ../shared/data/README.md) hold hard Chatbot Arena prompts with no tier
label; under data/tiers/RUBRIC.md few of them are simple. Since 2026-12-07 `smr train` learns from
arena-hard-v0.1's prompts (unlabelled, a teacher network's tier outputs: `TRANSFER_SETS` in
proxy/classify/train.py), so only v2.0 is still a set of prompts the model never saw. Prints the
share routed to each tier, by file and by `subcategory` where the file has one, and the
lowest-scored prompts sent to simple.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify import Prompt
from proxy.classify.datasets import read_jsonl
from proxy.classify.embedding import EmbeddingClassifier
from proxy.config import TIERS, Thresholds
from proxy.router import tier_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--examples", type=int, default=5, help="prompts sent to simple to show per group")
    args = parser.parse_args()
    files = args.files or [SHARED / "arena-hard-v2.0_prompts.jsonl"]
    classifier = EmbeddingClassifier()
    classifier.load()
    thresholds = Thresholds(**classifier.meta["thresholds"])
    for path in files:
        counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        simple: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
        for obj in read_jsonl(path):
            text = obj.get("prompt") or obj["turns"][-1]["content"]
            score = classifier.score(Prompt(text=text)).score
            tier = tier_for(score, thresholds)
            for group in {"all", obj.get("subcategory", "all") if "v2" in path.name else "all"}:
                counts[group][tier] += 1
                if tier == "simple":
                    simple[group].append((score, " ".join(text.split())[:100]))
        print(path.name)
        for group, tiers in sorted(counts.items()):
            n = sum(tiers.values())
            print(f"  {group:<18} n={n:<5}" + "".join(f" {t} {tiers[t] / n:6.1%}" for t in TIERS))
        for group, rows in sorted(simple.items()):
            for score, text in sorted(rows)[: args.examples]:
                print(f"    simple  {group:<18} d={score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
