"""What the training recipe's choices buy: one fine-tune per variant, scored after every epoch.

    pip install -e '.[train]'
    python bench/recipe_compare.py                     # the shipped recipe (3 layers, quality rows)
    python bench/recipe_compare.py --layers 6          # all of MiniLM's layers
    python bench/recipe_compare.py --no-quality        # tier rows only
    python bench/recipe_compare.py --no-translations   # without part_l's translated training rows
    python bench/recipe_compare.py --seed 20250807     # another seed: how much of a difference is luck
    python bench/recipe_compare.py --check data/tiers/part_f.jsonl   # also a tier file never trained on
    python bench/recipe_compare.py --train-file data/tiers/part_r.jsonl   # a batch in no split, trained on too
    python bench/recipe_compare.py --view ask --paste-tokens 32   # long prompts read as ask + sampled paste
    python bench/recipe_compare.py --max-tokens 64 --head-tokens 16   # trained on a shorter cut
    python bench/recipe_compare.py --dump /tmp/d.json  # every scored row's d (bench/length_slices.py reads it)
    python bench/recipe_compare.py --soup 1 --dump /tmp/d.json   # two students and their weight average
        # (a "model soup"; /tmp/d-seed1.json and /tmp/d-soup.json hold the second student's and the soup's d)
    python bench/recipe_compare.py --teacher-layers 6 --distill 0.5 --teacher-cache /tmp/t6.pt
        # first a 6-layer teacher (scored too), then the 3-layer student on tier targets softened
        # towards the teacher's (`finetune.distilled`); --transfer-file FILE adds unlabelled prompts
        # (e.g. the Arena ones) on which the student learns the teacher's tier outputs, weight
        # --transfer; the cache (the teacher's weights) lets another student reuse the teacher;
        # --from-teacher starts the student from the fine-tuned teacher's first layers, not MiniLM's

Each run fine-tunes on data/tiers/train.jsonl (plus, unless --no-quality, the RouteLLM training
parts, as `smr train` does) and, from epoch 2 on, prints for d (the shipped mix) and for the tier
outputs alone: tier accuracy and under-routing on the validation split, with thresholds tuned on
the training split's own scores (no cross-validation, so a little optimistic; the same for every
variant), and APGR on both quality hold-outs. One run takes 4-8 minutes on 2 cores (a 6-layer
teacher 11 more). The seed moves the APGR figures by a few hundredths (bench/README.md), so judge a close
call over several seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxy.classify import finetune
from proxy.classify.datasets import Row, load_rows
from proxy.classify.embedding import VIEWS
from proxy.classify.evaluate import quality_metrics, tier_metrics
from proxy.classify.head_fit import FOLDS, MIX, RANK, standardiser, tune_thresholds
from proxy.classify.train import CUT, QUALITY_SETS, SEED, training_inputs
from proxy.router import tier_for

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=finetune.LAYERS)
    parser.add_argument("--no-quality", action="store_true", help="train on the tier rows only")
    parser.add_argument("--no-translations", action="store_true", help="leave out rows with `translation_of`")
    parser.add_argument("--epochs", type=int, default=finetune.SCHEDULE_EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED + FOLDS, help="default: smr train's final fit's")
    parser.add_argument("--check", type=Path, action="append", default=[], help="another tier file to score")
    parser.add_argument("--train-file", type=Path, action="append", default=[], help="more tier rows to train on")
    parser.add_argument("--teacher-layers", type=int, default=0, help="distil from a teacher of this many layers")
    parser.add_argument("--distill", type=float, default=0.5, help="weight of the teacher in the tier targets")
    parser.add_argument("--transfer-file", type=Path, action="append", default=[], help="unlabelled prompts")
    parser.add_argument("--transfer", type=float, default=1.0, help="weight of the teacher on those prompts")
    parser.add_argument("--teacher-cache", type=Path, help="the teacher's weights (.pt), reused if present")
    parser.add_argument("--from-teacher", action="store_true", help="start from the teacher's first layers")
    parser.add_argument("--view", choices=VIEWS, default=CUT.view, help="how long prompts become word pieces")
    parser.add_argument("--paste-tokens", type=int, default=CUT.paste_tokens, help="the ask view's share of a paste")
    parser.add_argument("--max-tokens", type=int, default=CUT.max_tokens, help="word pieces read of a prompt")
    parser.add_argument("--head-tokens", type=int, default=CUT.head_tokens, help="of which from its start")
    parser.add_argument(
        "--soup",
        type=int,
        action="append",
        default=[],
        help="also a student with this seed (same initial weights), then the mean of the students' weights, scored too",
    )
    parser.add_argument("--dump", type=Path, help="write the last epoch's d for every tier row scored (JSON)")
    args = parser.parse_args()
    if args.transfer_file and not args.teacher_layers:
        parser.error("--transfer-file needs --teacher-layers: only a teacher labels those prompts")
    if args.from_teacher and not args.teacher_layers:
        parser.error("--from-teacher needs --teacher-layers")
    public = ROOT / "data" / "public"
    train = load_rows(ROOT / "data" / "tiers" / "train.jsonl")
    if args.no_translations:
        train = [row for row in train if not row.translation_of]
    train += [row for path in args.train_file for row in load_rows(path)]
    quality = {} if args.no_quality else {name: load_rows(public / f"{name}_train.jsonl") for name in QUALITY_SETS}
    tier_checks = {"valid": ROOT / "data" / "tiers" / "valid.jsonl"} | {path.stem: path for path in args.check}
    checks: dict[str, list[Row]] = {
        **{name: load_rows(path) for name, path in tier_checks.items()},
        **{f"{name}_holdout": load_rows(public / f"{name}_holdout.jsonl") for name in QUALITY_SETS},
    }
    transfer = {f"transfer:{path.stem}": load_rows(path) for path in args.transfer_file}
    cut = dataclasses.replace(
        CUT, view=args.view, paste_tokens=args.paste_tokens, max_tokens=args.max_tokens, head_tokens=args.head_tokens
    )
    inputs = training_inputs(train, quality, checks | transfer, cut)
    ids = inputs.ids
    mean, scale = standardiser(inputs.feats[: len(train)])
    z = (inputs.feats - mean) / scale
    mix_d = np.asarray(MIX, dtype=np.float32)
    mixes = {"d": mix_d, "tier outputs": np.asarray([0.5, 0.5, 0.0], dtype=np.float32)}
    report: list[dict[str, Any]] = []

    def score(epoch: int, net: Any, net_name: str = "") -> None:
        if epoch < 2:
            return
        probs = {name: finetune.output_probs(net, ids, z, inputs.others[name]) for name in checks}
        fitted = finetune.output_probs(net, ids, z, range(len(train)))
        tuned = {}
        for label, mix in mixes.items():
            thresholds, _ = tune_thresholds([RANK[r.tier or ""] for r in train], (fitted @ mix).tolist())
            tuned[label] = thresholds
            line: dict[str, Any] = {"epoch": epoch, "score": label} | ({"net": net_name} if net_name else {})
            for name in tier_checks:
                tiers = tier_metrics(
                    [r.tier or "" for r in checks[name]], [tier_for(float(s), thresholds) for s in probs[name] @ mix]
                )
                prefix = "" if name == "valid" else f"{name}_"
                keys = ("accuracy", "under_routed", "complex_to_simple")
                line |= {prefix + k: round(float(tiers[k]), 3) for k in keys}
            for name in (f"{q}_holdout" for q in QUALITY_SETS):
                rows = checks[name]
                apgr = quality_metrics(
                    (probs[name] @ mix).tolist(),
                    [r.score_strong or 0.0 for r in rows],
                    [r.score_weak or 0.0 for r in rows],
                )["apgr"]
                line[f"apgr_{name}"] = round(float(apgr), 3)
            report.append(line)
            print(json.dumps(line), flush=True)
        if args.dump is not None and epoch == args.epochs:
            rows = {
                name: [
                    [r.id, r.tier, round(float(p), 4), len(r.prompt.text)]
                    for r, p in zip(checks[name], probs[name] @ mix_d, strict=True)
                ]
                for name in tier_checks
            }
            medium, complex_ = tuned["d"].medium, tuned["d"].complex
            path = args.dump.with_name(f"{args.dump.stem}-{net_name}{args.dump.suffix}") if net_name else args.dump
            path.write_text(json.dumps({"thresholds": [medium, complex_], "rows": rows}))

    target, fit, start = inputs.target, list(range(len(train))), None
    if args.teacher_layers:
        extra = [j for name in transfer for j in inputs.others[name]]
        teacher, teacher_state = teacher_probs(args, inputs, z, score, [*fit, *extra])
        start = teacher_state if args.from_teacher else None
        target = finetune.distilled(target, teacher, len(train), args.distill, extra, args.transfer)
        fit += extra
        student = {
            "student": args.layers,
            "distill": args.distill,
            "transfer": args.transfer,
            "transfer_rows": len(extra),
            "from_teacher": args.from_teacher,
        }
        print(json.dumps(student), flush=True)
    nets = [
        finetune.fine_tune(
            ids,
            z,
            target,
            fit,
            inputs.quality,
            seed=seed,
            epochs=args.epochs,
            layers=args.layers,
            after_epoch=lambda epoch, net, name=name: score(epoch, net, name),
            start=start,
            init_seed=args.seed,
        )
        for seed, name in [(args.seed, ""), *((s, f"seed{s}") for s in args.soup)]
    ]
    if args.soup:
        score(args.epochs, finetune.soup(nets), "soup")
    return 0


def teacher_probs(args: argparse.Namespace, inputs: Any, z: Any, score: Any, rows: list[int]) -> tuple[Any, Any]:
    """The teacher's probabilities on `rows` (zero on the others, which nothing reads) and its weights;
    it is trained (and scored) unless its weights are cached."""
    import numpy as np

    torch = finetune._torch()
    if args.teacher_cache is not None and args.teacher_cache.is_file():
        net = finetune.build_net(z.shape[1], args.seed, args.teacher_layers)
        net.load_state_dict(torch.load(args.teacher_cache))
    else:
        print(json.dumps({"teacher": args.teacher_layers}), flush=True)
        fit = range(len(inputs.labels))
        net = finetune.fine_tune(
            inputs.ids,
            z,
            inputs.target,
            fit,
            inputs.quality,
            seed=args.seed,
            epochs=args.epochs,
            layers=args.teacher_layers,
            after_epoch=score,
        )
        if args.teacher_cache is not None:
            torch.save(net.state_dict(), args.teacher_cache)
    probs = np.zeros((len(inputs.ids), finetune.OUTPUTS), dtype=np.float32)
    probs[rows] = finetune.output_probs(net, inputs.ids, z, rows)
    return probs, net.state_dict()


if __name__ == "__main__":
    raise SystemExit(main())
