"""Activation statistics of the LoRA-targeted linear layers, captured with forward hooks.

For every targeted module we accumulate the input Gram matrix G = Σ xxᵀ (in × in) and the token count
over the chosen positions, which is all NLSR's projection, Wanda-style scores (‖X_j‖₂ = sqrt(G_jj)) and
the contrastive subspaces need. Hooks are always removed (``finally``), even when a forward pass fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from tuning.data import encode_conversations, encode_prompts
from tuning.rows import conversation


def target_linears(model: Any, targets: tuple[str, ...]) -> dict[str, torch.nn.Linear]:
    """Map 'model.layers.{i}.{block}.{proj}' → the plain nn.Linear computing it (PEFT base_layer if wrapped)."""
    out = {}
    for name, mod in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets and ".layers." in name:
            key = name[name.index("layers.") - len("model.") :] if "model.layers." in name else name
            out[key] = getattr(mod, "base_layer", mod)
    return out


@contextmanager
def capture_gram(model: Any, targets: tuple[str, ...], mask_holder: dict) -> Iterator[dict[str, dict]]:
    """Accumulate {module: {"gram": [in,in], "n": tokens}} for positions where mask_holder["mask"] is True."""
    stats: dict[str, dict] = {}
    handles = []

    def hook(key: str) -> Callable[..., None]:
        def fn(_mod: torch.nn.Module, args: tuple, _out: torch.Tensor) -> None:
            x = args[0].detach().float()
            keep = mask_holder["mask"].reshape(-1)
            x = x.reshape(-1, x.shape[-1])[keep]
            s = stats.setdefault(key, {"gram": torch.zeros(x.shape[1], x.shape[1]), "n": 0})
            s["gram"] += (x.T @ x).cpu()
            s["n"] += int(x.shape[0])

        return fn

    try:
        for key, lin in target_linears(model, targets).items():
            handles.append(lin.register_forward_hook(hook(key)))
        yield stats
    finally:
        for h in handles:
            h.remove()


def _batches(
    tokenizer: Any, rows: list[dict], prompt_only: bool, batch_size: int, max_len: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Right-padded batches: the prompts with the generation prompt, or whole conversations with labels."""
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        if prompt_only:
            yield dict(encode_prompts(tokenizer, [r["prompt"] for r in chunk], padding_side="right", max_len=max_len))
        else:
            yield encode_conversations(tokenizer, [conversation(r["prompt"], r["response"]) for r in chunk], max_len)


def _positions(batch: dict, prompt_only: bool, last_only: bool) -> torch.Tensor:
    if not prompt_only:
        return batch["labels"] != -100
    mask = batch["attention_mask"].bool()
    if last_only:
        last = mask.sum(1) - 1
        mask = torch.zeros_like(mask)
        mask[torch.arange(mask.shape[0]), last] = True
    return mask


@torch.inference_mode()
def collect(
    model: Any,
    tokenizer: Any,
    rows: list[dict],
    targets: tuple[str, ...],
    prompt_only: bool = True,
    batch_size: int = 16,
    max_len: int = 256,
    last_only: bool = False,
) -> dict[str, dict]:
    """Input Gram matrices per target module. prompt_only: prompt positions (incl. the generation prompt;
    ``last_only``: just the final one, where the model decides how to answer); otherwise response tokens
    only (labels != -100), as NLSR does."""
    holder: dict = {}
    device = next(model.parameters()).device
    with capture_gram(model, targets, holder) as stats:
        for b in _batches(tokenizer, rows, prompt_only, batch_size, max_len):
            b = {k: v.to(device) for k, v in b.items()}
            holder["mask"] = _positions(b, prompt_only, last_only)
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    return stats


@torch.inference_mode()
def last_token_states(model: Any, tokenizer: Any, prompts: list[str], batch_size: int = 16) -> torch.Tensor:
    """Hidden state of the final prompt position at every layer: [layers+1, n, hidden]."""
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(prompts), batch_size):
        enc = encode_prompts(tokenizer, prompts[i : i + batch_size]).to(device)
        hs = model(**enc, output_hidden_states=True).hidden_states
        outs.append(torch.stack([h[:, -1].float().cpu() for h in hs]))
    return torch.cat(outs, dim=1)
