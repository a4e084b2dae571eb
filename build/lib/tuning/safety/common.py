"""Shared helpers: module naming between PEFT adapter keys and model modules, the reference LoRA, the
realignment methods' ``info``."""

from __future__ import annotations

import re

import torch

from tuning.adapters import Adapter, a_key, b_key

_LAYER = re.compile(r"layers\.(\d+)\.")


def short(module: str) -> str:
    """'base_model.model.model.layers.3.mlp.up_proj' → 'model.layers.3.mlp.up_proj'."""
    i = module.index("layers.")
    return "model." + module[i:]


def layer_of(module: str) -> int:
    m = _LAYER.search(module)
    if m is None:
        raise ValueError(f"no layer index in {module!r}")
    return int(m.group(1))


def leaf(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def reference(alignment: Adapter, beta: float, code_faithful: bool) -> Adapter:
    """NLSR's super-aligned reference by LoRA extrapolation.

    Paper form (default): ΔW_e = (1+β)ΔW_a, obtained by scaling B only. ``code_faithful``: the official
    code multiplies both A and B by 2α (α=0.9 → ΔW_e = 3.24ΔW_a)."""
    ref = alignment.clone()
    for m in ref.modules():
        if code_faithful:
            ref.state[a_key(m)] = ref.state[a_key(m)] * (2 * beta)
            ref.state[b_key(m)] = ref.state[b_key(m)] * (2 * beta)
        else:
            ref.state[b_key(m)] = ref.state[b_key(m)] * (1 + beta)
    return ref


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.flatten().float(), y.flatten().float()
    denom = float(x.norm() * y.norm())
    return float(x @ y) / denom if denom > 0 else 0.0


def change_info(changed: dict[str, int], sims: dict[str, float] | None = None) -> dict:
    """A method's ``info``: the modules it changed (those with a non-zero count), how many entries or rows it
    changed in total, and the per-module similarity it measured (if any)."""
    return {
        "modules_changed": sorted(m for m, n in changed.items() if n),
        "neurons_changed": sum(changed.values()),
        "per_module_similarity": sims or {},
    }
