"""Tier metrics on the validation split, whole and by labelled batch, for one model directory.

    python bench/valid_parts.py                                  # the shipped model
    git worktree add /tmp/before 766621d                          # the model before part_c
    python bench/valid_parts.py --model /tmp/before/proxy/classify/model
    python bench/valid_parts.py --file data/tiers/part_h.jsonl   # a batch in no split, by sub-batch
    python bench/valid_parts.py --cut 96 24                      # long prompts cut shorter than trained

The batches are told apart by the first letter of a row's id (part_c's ids start with "c",
part_d's with "d", ...); part_a and part_b were split together, so they are reported as one
(the 350 rows held out before part_c was added). Each model is cut at its own tuned
thresholds (meta.json). With `--file`, another tier file, grouped by the id's prefix before its
first "-" (part_h's h1, h2, h3). Either way, English and non-English rows are also reported apart
(the row's `lang`), and each line ends with the share routed right among the simple, medium and
complex rows. `--cut MAX HEAD` scores with long prompts cut to MAX word pieces, the first HEAD
kept (meta.json's `max_tokens` / `head_tokens` changed in a temporary copy of the model directory;
the network is not retrained). The old-against-new figures for the classifier in bench/README.md are this script's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import read_jsonl, to_row
from proxy.classify.embedding import MODEL_DIR, EmbeddingClassifier
from proxy.classify.evaluate import evaluate
from proxy.config import Thresholds

VALID = Path(__file__).resolve().parents[1] / "data" / "tiers" / "valid.jsonl"
KEYS = ("n", "accuracy", "under_routed", "over_routed", "complex_to_simple", "confusion")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="a directory of classifier files")
    parser.add_argument("--file", type=Path, default=VALID, help="a tier file (default: the validation split)")
    parser.add_argument("--cut", type=int, nargs=2, metavar=("MAX", "HEAD"), help="cut long prompts to MAX word pieces")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model = recut(args.model, Path(scratch), *args.cut) if args.cut else args.model
        return report(model, args.file)


def recut(model: Path, scratch: Path, max_tokens: int, head_tokens: int) -> Path:
    """A copy of the model directory (its files linked) whose meta.json cuts prompts at `max_tokens`."""
    for path in model.iterdir():
        if path.name != "meta.json":
            (scratch / path.name).symlink_to(path.resolve())
    meta = json.loads((model / "meta.json").read_text())
    (scratch / "meta.json").write_text(json.dumps({**meta, "max_tokens": max_tokens, "head_tokens": head_tokens}))
    return scratch


def report(model: Path, file: Path) -> int:
    classifier = EmbeddingClassifier(model, threads=1)
    classifier.load()
    thresholds = Thresholds(**classifier.meta["thresholds"])
    objs = read_jsonl(file)
    parts: dict[str, list[dict[str, Any]]] = {"all": objs}
    for o in sorted(objs, key=lambda o: str(o["id"])):
        if file == VALID:
            parts.setdefault("part_a+b" if o["id"][0] in "ab" else f"part_{o['id'][0]}", []).append(o)
        else:
            parts.setdefault(str(o["id"]).split("-")[0], []).append(o)
    for o in objs:
        parts.setdefault("English" if o.get("lang", "en") == "en" else "other", []).append(o)
    out = {"thresholds": classifier.meta["thresholds"]}
    for name, part in parts.items():
        rows = [to_row(o, f"{file.name}:{o['id']}") for o in part]
        metrics = evaluate(classifier, rows, thresholds, progress=None)
        out[name] = {k: metrics[k] for k in KEYS}
        confusion = metrics["confusion"]
        by_label = " / ".join(
            f"{confusion[t][t] / total:.2f}" if (total := sum(confusion[t].values())) else "-"
            for t in ("simple", "medium", "complex")
        )
        print(
            f"{name:<9} n={metrics['n']:<4} accuracy {metrics['accuracy']:.3f}  under {metrics['under_routed']:.1%}"
            f"  over {metrics['over_routed']:.1%}  complex→simple {metrics['complex_to_simple']:.1%}"
            f"  right by label s/m/c {by_label}"
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
