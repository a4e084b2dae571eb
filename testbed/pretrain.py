"""Pretraining the tiny Llama from scratch: a plain full-parameter loop (no Trainer).

Every document starts at position 0, as at inference: chat documents (request + answer, chat template)
and plain-text knowledge documents (ending in ``<|end|>``) are batched by similar length (little
padding). Loss: on the answer tokens of chat documents (the prompt is context, as in instruction
tuning; predicting randomly composed requests only costs capacity) and on every token of plain text.
AdamW with linear warmup and cosine decay to 10%; same seed -> same weights on CPU.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch

from tuning.data import collate, encode_example


@dataclass(frozen=True)
class PretrainSpec:
    epochs: int = 3
    batch_size: int = 16
    max_len: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 0


def encode(tokenizer, chats: list[list[dict]], texts: list[str], max_len: int) -> list[dict]:  # noqa: ANN001
    """{"input_ids", "labels"} per document; labels -100 on chat prompts."""
    docs = [encode_example(tokenizer, c, max_len) for c in chats]
    for t in texts:
        ids = (tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])[:max_len]
        docs.append({"input_ids": ids, "labels": list(ids)})
    return docs


def length_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (random tie order), batches in random order."""
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train(model, docs: list[dict], spec: PretrainSpec, pad_id: int) -> dict:  # noqa: ANN001
    """Full-parameter training on ``docs``; returns {"steps", "tokens", "loss_first", "loss_last", "wall_s"}."""
    torch.manual_seed(spec.seed)
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": spec.weight_decay},
                             {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}],
                            lr=spec.learning_rate, betas=(0.9, 0.95))
    lengths = [len(d["input_ids"]) for d in docs]
    per_epoch = math.ceil(len(docs) / spec.batch_size)
    total = per_epoch * spec.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, spec.warmup_steps))
    model.train()
    started, losses, tokens = time.monotonic(), [], 0
    for epoch in range(spec.epochs):
        for idx in length_batches(lengths, spec.batch_size, spec.seed * 7919 + epoch):
            batch = collate([docs[i] for i in idx], pad_id)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            tokens += int(batch["attention_mask"].sum())
    model.eval()
    k = max(1, per_epoch // 4)
    return {"steps": total, "tokens": tokens, "wall_s": round(time.monotonic() - started, 1),
            "loss_first": round(sum(losses[:k]) / k, 4), "loss_last": round(sum(losses[-k:]) / k, 4)}
