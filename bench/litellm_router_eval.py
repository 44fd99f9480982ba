"""LiteLLM's own local router scored on our labelled files, for the same table `smr eval` gives.

    bench/.venv-litellm/bin/python bench/litellm_router_eval.py     # the venv proxy_bench.py installs

It builds LiteLLM's `ComplexityRouter` (the rule-based `auto_router/complexity_router` of
`litellm[proxy]`, default configuration, no network) and classifies the last user message of every
row. Tiers: SIMPLE → simple, MEDIUM → medium, COMPLEX and REASONING → complex. On the quality
files its numeric score ranks the prompts for APGR. Runs in LiteLLM's venv, so it reads the files
with the standard library only and computes the metrics itself (same definitions as `smr eval`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the validation split and the unseen batches (proxy.classify.train.UNSEEN; this venv cannot import it)
TIER_FILES = [
    "data/tiers/valid.jsonl",
    "data/tiers/part_j.jsonl",
    "data/tiers/part_n.jsonl",
    "data/tiers/part_p.jsonl",
    "data/tiers/part_q.jsonl",
]
QUALITY_FILES = ["data/public/routellm_gsm8k_dev_holdout.jsonl", "data/public/routellm_mmlu_dev_holdout.jsonl"]
RANK = {"simple": 0, "medium": 1, "complex": 2}
OURS = {"SIMPLE": "simple", "MEDIUM": "medium", "COMPLEX": "complex", "REASONING": "complex"}


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "\n".join(p.get("text") or "" for p in content if isinstance(p, dict))
            return content or ""
    return ""


def apgr(scores: list[float], strong: list[float], weak: list[float]) -> float:
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    q_weak, q_strong = sum(weak) / n, sum(strong) / n
    total, curve = sum(weak), [0.0]
    for i in order:
        total += strong[i] - weak[i]
        curve.append((total / n - q_weak) / (q_strong - q_weak))
    picks = [curve[round(k * n / 100)] for k in range(101)]
    return sum(picks) / len(picks)


def main() -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no cost-map download
    from litellm import Router
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    router = Router(model_list=[{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "x"}}])
    tiers = dict.fromkeys(("SIMPLE", "MEDIUM", "COMPLEX", "REASONING"), "m")
    classifier = ComplexityRouter("auto", router, {"tiers": tiers}, derive_savings_baseline=False)
    from importlib.metadata import version

    report: dict[str, Any] = {"litellm": version("litellm")}
    for name in TIER_FILES:
        rows = [json.loads(line) for line in (ROOT / name).read_text().splitlines() if line.strip()]
        truth, routed, times = [], [], []
        for row in rows:
            started = time.perf_counter()
            tier, _, _ = classifier.classify(last_user_text(row["messages"]))
            times.append(time.perf_counter() - started)
            truth.append(row["tier"])
            routed.append(OURS[str(getattr(tier, "value", tier)).upper()])
        n = len(rows)
        pairs = list(zip(truth, routed, strict=True))
        report[name] = {
            "n": n,
            "accuracy": round(sum(t == r for t, r in pairs) / n, 4),
            "under_routed": round(sum(RANK[r] < RANK[t] for t, r in pairs) / n, 4),
            "over_routed": round(sum(RANK[r] > RANK[t] for t, r in pairs) / n, 4),
            "complex_to_simple": round(sum(t == "complex" and r == "simple" for t, r in pairs) / n, 4),
            "routed_share": {t: round(routed.count(t) / n, 3) for t in RANK},
            "p50_ms": round(sorted(times)[n // 2] * 1000, 3),
        }
    for name in QUALITY_FILES:
        rows = [json.loads(line) for line in (ROOT / name).read_text().splitlines() if line.strip()]
        scores = [float(classifier.classify(last_user_text(r["messages"]))[1]) for r in rows]
        strong = [float(r["score_strong"]) for r in rows]
        weak = [float(r["score_weak"]) for r in rows]
        report[name] = {"n": len(rows), "apgr": round(apgr(scores, strong, weak), 4)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
