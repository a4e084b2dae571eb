"""Pretraining the tiny Llama from scratch: full-parameter training with Keel's one loop (:class:`TrainLoop`).

Every document starts at position 0, as at inference: chat documents (request + answer, chat template)
and plain-text knowledge documents (ending in ``<|end|>``) are batched by similar length (little
padding). Loss: on the answer tokens of chat documents (the prompt is context, as in instruction
tuning; predicting randomly composed requests only costs capacity) and on every token of plain text.
AdamW (betas 0.9/0.95, no weight decay on norms) with linear warmup and cosine decay to 10%; same seed ->
same weights on CPU.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from tuning.console import ConsoleProgress
from tuning.data import encode_example
from tuning.specs import TrainSpec
from tuning.train import TrainLoop

LR_FLOOR = 0.1  # the cosine ends at 10% of the peak learning rate


def encode(tokenizer: Any, chats: list[list[dict]], texts: list[str], max_len: int) -> list[dict]:
    """{"input_ids", "labels"} per document; labels -100 on chat prompts."""
    docs = [encode_example(tokenizer, c, max_len) for c in chats]
    for t in texts:
        ids = (tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])[:max_len]
        docs.append({"input_ids": ids, "labels": list(ids)})
    return docs


class _Losses(ConsoleProgress):
    """Keeps every step's loss (and shows a progress bar with an ETA)."""

    def __init__(self) -> None:
        super().__init__("testbed pretrain")
        self.losses: list[float] = []

    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        self.losses.append(metrics["loss"])
        super().on_step(step, total_steps, metrics)


def train(model: Any, docs: list[dict], spec: TrainSpec, pad_id: int, warmup_steps: int) -> dict:
    """Full-parameter training on ``docs`` (``spec``'s epochs, batch size, learning rate, weight decay, clipping
    and seed; ``warmup_steps`` replaces its warmup ratio); returns {"steps", "tokens", "loss_first",
    "loss_last", "wall_s"}."""
    torch.manual_seed(spec.seed)
    params = dict(model.named_parameters())
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=spec.learning_rate, betas=(0.9, 0.95))
    loop = TrainLoop(model, docs, spec, None, pad_id, optimizer=optimizer, warmup_steps=warmup_steps, lr_floor=LR_FLOOR)
    record = _Losses()
    model.train()
    started = time.monotonic()
    loop.run(record)
    model.eval()
    k = max(1, loop.total // spec.n_epochs // 4)
    losses = record.losses
    return {
        "steps": loop.total,
        "tokens": loop.state["trained_tokens"],
        "wall_s": round(time.monotonic() - started, 1),
        "loss_first": round(sum(losses[:k]) / k, 4),
        "loss_last": round(sum(losses[-k:]) / k, 4),
    }
