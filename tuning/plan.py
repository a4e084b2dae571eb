"""Planning a training run without torch: "auto" hyperparameters, the number of optimizer steps, micro-batches and
the peak memory of training.

Used by the service at job creation (dry runs, ETAs) and by the training loop, so both count the same steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def total_steps(n_examples: int, batch_size: int, n_epochs: int) -> int:
    """Optimizer steps of a run: ceil(n / batch) per epoch (the last batch of an epoch may be short)."""
    return -(-n_examples // batch_size) * n_epochs


def resolve_auto_hyperparameters(n_examples: int, n_tokens: int) -> dict:
    """OpenAI-like "auto" values.

    * epochs: 3 for >= 100 examples; smaller sets get ceil(100 / n) (so at least ~100 example passes), at
      most 10. Very large token budgets (> 20M tokens per epoch) drop to 2, then 1 above 50M.
    * batch size: n // 8 clipped to [1, 8] up to 500 examples, then ~0.2% of n clipped to [1, 32].
    * learning-rate multiplier 1.0 (the base LR is configured per deployment).
    """
    if n_examples >= 100:
        epochs = 1 if n_tokens > 50_000_000 else 2 if n_tokens > 20_000_000 else 3
    else:
        epochs = min(10, max(3, math.ceil(100 / max(n_examples, 1))))
    batch = min(32, max(1, round(n_examples * 0.002))) if n_examples > 500 else min(8, max(1, n_examples // 8))
    return {"n_epochs": int(epochs), "batch_size": int(batch), "learning_rate_multiplier": 1.0}


# --- Memory: micro-batches cut by a token budget, and the peak the trainer reaches (issue #18) ------------------

DEFAULT_MICRO_BATCH_TOKENS = 4096
"""Tokens per micro-batch (rows x padded width, or the packed row's length). 4096: a batch of 8 chat rows of up
to 512 tokens (the common case) still runs as one forward/backward, so accumulation costs nothing there, while a
micro-batch's activations stay a few hundred MB on a SmolLM2-sized model with checkpointing (see
:func:`estimate_peak_memory_bytes`); a single longer row is its own micro-batch."""
CHECKPOINT_ABOVE_BYTES = 1 << 30
"""A micro-batch whose decoder activations (without checkpointing) would exceed this is run with activation
checkpointing on the decoder layers: recompute costs ~1/3 more compute, so it is used only where it pays."""
RUNTIME_OVERHEAD_BYTES = 400 * 1024**2
"""Resident memory of a training process besides the weights: Python, torch, transformers, peft, the tokenizer
(measured on CPU: 0.39-0.41 GB RSS after loading SmolLM2, whose safetensors weights are mapped, not yet read)."""
LOGITS_CHUNK_BYTES = 3 * 4 * (1 << 24)  # tuning.loss.LOGITS_BUDGET float32 logits, their softmax and its grad


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that memory depends on (read from its ``config.json``)."""

    n_params: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int

    @classmethod
    def from_config(cls, cfg: dict, n_params: int | None = None) -> ModelShape:
        """From a HF ``config.json`` dict; ``n_params`` (default: counted for a Llama-style decoder)."""
        h, layers, heads = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
        kv = int(cfg.get("num_key_value_heads") or heads)
        inter, vocab = int(cfg.get("intermediate_size") or 4 * h), int(cfg["vocab_size"])
        head_dim = int(cfg.get("head_dim") or h // heads)
        if n_params is None:
            attn = h * head_dim * (2 * heads + 2 * kv)
            per_layer = attn + 3 * h * inter + 2 * h
            embeds = vocab * h * (1 if cfg.get("tie_word_embeddings", False) else 2)
            n_params = layers * per_layer + embeds + h
        return cls(n_params, h, layers, heads, kv, inter, vocab)


def lora_param_count(shape: ModelShape, r: int, target_modules: tuple[str, ...] | list[str]) -> int:
    """Trainable parameters of a rank-``r`` LoRA on a Llama-style decoder's projections named in ``target_modules``."""
    h, i, head_dim = shape.hidden, shape.intermediate, shape.hidden // shape.heads
    dims = {
        "q_proj": (h, shape.heads * head_dim),
        "k_proj": (h, shape.kv_heads * head_dim),
        "v_proj": (h, shape.kv_heads * head_dim),
        "o_proj": (shape.heads * head_dim, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }
    return shape.layers * sum(r * (a + b) for name, (a, b) in dims.items() if name in target_modules)


def micro_batches(lengths: list[int], budget: int, padded: bool = True) -> list[list[int]]:
    """Positions of ``lengths`` cut, in order, into micro-batches of at most ``budget`` tokens: rows x the longest
    row for padded batches, the sum of lengths for packed ones. A row longer than the budget is alone."""
    out: list[list[int]] = []
    cur: list[int] = []
    width = used = 0
    for pos, n in enumerate(lengths):
        cost = (len(cur) + 1) * max(width, n) if padded else used + n
        if cur and cost > budget:
            out.append(cur)
            cur, width, used = [], 0, 0
        cur.append(pos)
        width, used = max(width, n), used + n
    return out + [cur] if cur else out


def activation_bytes_per_token(shape: ModelShape, dtype_bytes: int = 4) -> int:
    """Bytes the decoder keeps per token for the backward pass without checkpointing (all layers), with LoRA on
    every projection and SDPA (flash / memory-efficient) attention: about 10 hidden-sized and 5
    intermediate-sized tensors per layer (norm inputs and outputs, q/k/v before and after rotary, attention
    output, the MLP's gate, up, activation and product)."""
    kv = shape.kv_heads * (shape.hidden // shape.heads)
    return shape.layers * dtype_bytes * (8 * shape.hidden + 4 * kv + 5 * shape.intermediate)


def needs_checkpointing(shape: ModelShape, tokens: int, dtype_bytes: int = 4) -> bool:
    """Whether a micro-batch of ``tokens`` tokens is checkpointed (:data:`CHECKPOINT_ABOVE_BYTES`)."""
    return tokens * activation_bytes_per_token(shape, dtype_bytes) > CHECKPOINT_ABOVE_BYTES


def estimate_peak_memory_bytes(
    shape: ModelShape,
    lora_params: int,
    micro_batch_tokens: int = DEFAULT_MICRO_BATCH_TOKENS,
    longest_row: int = 0,
    dtype_bytes: int = 4,
    runtime_bytes: int = RUNTIME_OVERHEAD_BYTES,
) -> int:
    """Peak memory of one training worker running :func:`tuning.train.train_lora` on this model: resident
    runtime, frozen weights (``dtype_bytes`` each), the LoRA in float32 with its gradient and two AdamW moments,
    and the activations of the largest micro-batch (``max(micro_batch_tokens, longest_row)`` tokens): with
    checkpointing the layer inputs of every layer plus one layer's recompute, else every layer's activations;
    plus the chunked LM head's logits. Attention is taken to be SDPA without a dense mask (no seq² term), which
    is what the trainer runs for long rows."""
    tokens = max(micro_batch_tokens, longest_row, 1)
    per_token = activation_bytes_per_token(shape, dtype_bytes)
    if needs_checkpointing(shape, tokens, dtype_bytes):
        acts = tokens * (shape.layers * shape.hidden * dtype_bytes + per_token // shape.layers)
    else:
        acts = tokens * per_token
    hidden_out = 3 * tokens * shape.hidden * 4  # final hidden states, the gathered labelled rows and their grad
    weights = shape.n_params * dtype_bytes + 16 * lora_params
    return int(runtime_bytes + weights + acts + hidden_out + LOGITS_CHUNK_BYTES)
