"""Causal-LM loss on the labelled positions only, with the LM head applied in chunks.

HF's ``model(..., labels=...)`` projects every position onto the vocabulary and upcasts the whole
``tokens x vocab`` logits tensor to float32 before the cross-entropy, although SFT labels only the
assistant tokens (often a few percent of a chat). Here the decoder runs once, the hidden states of the
positions that have a target are gathered, and the LM head + cross-entropy run on them in chunks of at
most :data:`LOGITS_BUDGET` logits; when there is more than one chunk each chunk is recomputed in the
backward pass (activation checkpointing), so the full logits tensor never exists, forward or backward.

The value is the same as HF's: the mean cross-entropy over targets != -100 after the one-token shift
(float32 logits), up to summation order. Models whose logits are not a plain ``lm_head(hidden)`` (final
logit soft-capping, logit scaling) or that do not expose a decoder fall back to the model's own loss
computed on the labelled positions only (``logits_to_keep``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100
LOGITS_BUDGET = 1 << 24  # logits per chunk (64 MiB in float32): 4096 rows of a 4k vocab, 341 of SmolLM2's 49k
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def _chunk_ce(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def chunked_head_ce(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, budget: int = LOGITS_BUDGET
) -> torch.Tensor:
    """Sum of the cross-entropy of ``head(hidden)`` (N x d -> N x vocab) against ``targets`` (N), computed
    in row chunks of at most ``budget`` logits, each recomputed in backward when there is more than one."""
    vocab = head.weight.shape[0] if hasattr(head, "weight") else head.out_features
    rows = max(1, budget // vocab)
    if hidden.shape[0] <= rows:
        return _chunk_ce(head, hidden, targets)
    total = hidden.new_zeros((), dtype=torch.float32)
    for s in range(0, hidden.shape[0], rows):
        total = total + checkpoint(_chunk_ce, head, hidden[s : s + rows], targets[s : s + rows], use_reentrant=False)
    return total


def _parts(model: Any) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder, lm_head) of a (peft-wrapped) causal LM whose logits are ``lm_head(decoder(...)[0])``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(base, "config", None)
    if cfg is None or any(getattr(cfg, k, None) not in (None, 1, 1.0) for k in _LOGIT_TRANSFORMS):
        return None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    decoder = getattr(base, getattr(base, "base_model_prefix", "") or "model", None)
    if head is None or not isinstance(decoder, torch.nn.Module) or decoder is base:
        return None
    return decoder, head


def labelled_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask over positions 0..T-2 whose next token is a target, those targets), after the causal shift."""
    shifted = labels[:, 1:]
    mask = shifted != IGNORE
    return mask, shifted[mask]


def causal_lm_loss(
    model: Any, batch: dict[str, torch.Tensor], budget: int = LOGITS_BUDGET, n_targets: int | None = None
) -> torch.Tensor:
    """Mean cross-entropy over the labelled next-token targets of ``batch`` (input_ids, labels and optionally
    attention_mask (padded rows) or position_ids (packed rows)), computing logits only where there is a target.
    ``n_targets``: divide the sum by this instead of the batch's own count (a micro-batch's share of the mean
    over a whole batch, for gradient accumulation)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    mask, targets = labelled_targets(labels)
    n = targets.numel() if n_targets is None else n_targets
    parts = _parts(model)
    if parts is None:  # the model's own logits (soft-capping etc.), but only at the labelled positions
        keep = torch.cat([mask, mask.new_zeros((mask.shape[0], 1))], dim=1)
        logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits  # (n, vocab): a bool mask flattens
        return F.cross_entropy(logits.float(), targets, reduction="sum") / max(n, 1)
    decoder, head = parts
    hidden = decoder(**inputs, use_cache=False)[0]
    return chunked_head_ce(head, hidden[:, :-1][mask], targets, budget) / max(n, 1)


def reference_loss(model: Any, batch: dict[str, torch.Tensor], n_targets: int | None = None) -> torch.Tensor:
    """HF's own loss (full logits): what :func:`causal_lm_loss` must equal. ``use_cache=False`` matters for
    packed rows: with a cache, transformers does not read position restarts as sequence boundaries.
    ``n_targets``: as in :func:`causal_lm_loss` (HF's mean is rescaled to that denominator)."""
    loss = model(**batch, use_cache=False).loss
    if n_targets is None:
        return loss
    own = int((batch["labels"][:, 1:] != IGNORE).sum())
    return loss if own == n_targets else loss * (own / max(n_targets, 1))
