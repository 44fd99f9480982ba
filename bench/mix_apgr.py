"""APGR of the shipped classifier's outputs under other mixes: which output ranks the exam sets.

    python bench/mix_apgr.py                          # head.json's mix against the tier outputs alone
    python bench/mix_apgr.py --mix 0.5 0.5 0 --mix 0 0 1

The head's three outputs are P(>= medium), P(complex) and P(weak model falls short); d mixes them
with head.json's `mix`. Each prompt of the RouteLLM hold-outs is run through the network once, then
every mix is scored with `smr eval`'s quality report (APGR, with prompt length's APGR and the lead's
95% interval beside it). A diagnostic: changing the shipped mix also means new thresholds, which
`smr train` picks by cross-validation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify.datasets import load_rows
from proxy.classify.embedding import MODEL_DIR, EmbeddingClassifier, Head, featurize
from proxy.classify.evaluate import quality_report

ROOT = Path(__file__).resolve().parents[1]
HOLDOUTS = ("routellm_gsm8k_dev_holdout", "routellm_mmlu_dev_holdout")


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", type=float, nargs=3, action="append", help="weights of the three outputs")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    head = Head(json.loads((args.model_dir / "head.json").read_text()))
    mixes = [head.mix.tolist(), *(args.mix or [[0.5, 0.5, 0.0]])]
    classifier = EmbeddingClassifier(args.model_dir)
    classifier.load()
    encoder = classifier._encoder()
    for name in HOLDOUTS:
        rows = load_rows(ROOT / "data" / "public" / f"{name}.jsonl")
        outputs = np.stack([head.outputs(featurize(encoder, row.prompt)) for row in rows])
        for mix in mixes:
            scores = np.clip(outputs @ np.asarray(mix, dtype=np.float32), 0.0, 1.0)
            report = quality_report(scores.tolist(), rows)
            line = {"file": name, "mix": [round(w, 4) for w in mix]}
            line |= {k: round(report[k], 3) for k in ("apgr", "apgr_length", "lead_over_length")}
            line["lead_ci95"] = [round(v, 3) for v in report["lead_over_length_ci95"]]
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
