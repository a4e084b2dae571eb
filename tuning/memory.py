"""What the trainer needs to keep its memory bounded: the model's shape for :mod:`tuning.plan`'s memory plan,
per-micro-batch activation checkpointing, and the peak-memory reading reported with a run (issue #18)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from tuning.plan import ModelShape


def model_shape(model: Any) -> ModelShape | None:
    """The model's shape for the memory plan (None when its config is not a standard decoder's)."""
    try:
        n = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        return ModelShape.from_config(model.config.to_dict(), n_params=n)
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


class Checkpointing:
    """Activation checkpointing of a model's decoder layers (transformers' ``GradientCheckpointingLayer``),
    switched per micro-batch; non-reentrant (needs no input gradients, so it works under peft)."""

    def __init__(self, model: Any) -> None:
        from transformers.modeling_layers import GradientCheckpointingLayer

        self.layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
        for m in self.layers:
            m._gradient_checkpointing_func = partial(checkpoint, use_reentrant=False)

    def set(self, on: bool) -> None:
        for m in self.layers:
            m.gradient_checkpointing = on


def peak_memory_bytes(device: str) -> int:
    """Peak memory so far: CUDA's allocator peak (reset at the start of :func:`train_lora`) on a GPU, else the
    process's peak resident set (ru_maxrss: a lifetime peak, so in a warm worker it covers earlier jobs too)."""
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
