"""Contrastive input-subspace projection (Keel's first design, kept as a diagnostic; not rank-preserving).

Per adapted module with input Gram matrices G_h (harmful prompts) and G_b (benign prompts plus the
customer's own prompts), the k directions v maximising vᵀG_h v / vᵀ(G_b + λI)v span a subspace P where
harmful requests carry energy that benign and task inputs do not. The realigned update is

    ΔW' = ΔW_t (I − P) + ΔW_a P

i.e. on those directions the module behaves exactly like the aligned model, elsewhere exactly like the
fine-tuned one (task skill kept). The edit is exact as a LoRA of rank 2r: B' = [B_t | B_a],
A' = [A_t (I − P); A_a P], alpha' = 2·alpha (same scale). Strength = k (and which layers).

Measured on the testbed (p = 0.1): this one-shot edit moved HS little before the task broke, because the
per-module edits compound through the layers; ``tuning.safety.keel`` (sequential output matching) replaced
it. It changes the adapter's rank, so ``realign_job`` does not offer it.
"""
from __future__ import annotations

import torch

from tuning.adapters import Adapter, a_key, b_key
from tuning.safety.common import layer_of, short


def contrast_basis(g_h: torch.Tensor, g_b: torch.Tensor, k: int, ridge: float = 1.0) -> torch.Tensor:
    """Orthonormal [in, k] basis of the top-k generalized eigenvectors of (G_h, G_b + λI)."""
    n = g_b.shape[0]
    reg = g_b.double() + ridge * (torch.trace(g_b.double()) / n + 1e-8) * torch.eye(n, dtype=torch.float64)
    chol = torch.linalg.cholesky(reg)
    inv = torch.linalg.solve_triangular(chol, torch.eye(n, dtype=torch.float64), upper=False)
    whitened = inv @ g_h.double() @ inv.T
    _, vecs = torch.linalg.eigh((whitened + whitened.T) / 2)
    v = inv.T @ vecs[:, -k:]
    q, _ = torch.linalg.qr(v)
    return q.float()


def projection_edit(ft: Adapter, alignment: Adapter, grams_h: dict[str, torch.Tensor], grams_b: dict[str, torch.Tensor],
         cfg: dict) -> tuple[Adapter, dict]:
    k, layers = int(cfg.get("k", 4)), cfg.get("layers")
    r, alpha = int(ft.config["r"]), int(ft.config["lora_alpha"])
    state, changed = {}, {}
    for m in ft.modules():
        a_t, b_t = ft.pair(m)
        a_a, b_a = alignment.pair(m)
        name = short(m)
        if (layers is None or layer_of(m) in layers) and name in grams_h and k > 0:
            q = contrast_basis(grams_h[name], grams_b[name], min(k, a_t.shape[1]))
            p = q @ q.T
            changed[m] = q.shape[1]
        else:
            p = torch.zeros(a_t.shape[1], a_t.shape[1])
        eye = torch.eye(a_t.shape[1])
        state[a_key(m)] = torch.cat([a_t.float() @ (eye - p), a_a.float() @ p]).to(a_t.dtype)
        state[b_key(m)] = torch.cat([b_t.float(), b_a.float()], dim=1).to(b_t.dtype)
    config = {**ft.config, "r": 2 * r, "lora_alpha": 2 * alpha}
    return Adapter(state, config), {"modules_changed": sorted(m for m in changed), "neurons_changed":
                                    sum(changed.values()), "per_module_similarity": {}, "directions_per_module": k}


keel = projection_edit  # the name tests/tuning/test_safety.py imports
