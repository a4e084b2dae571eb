"""Realignment methods: pure functions (fine-tuned Adapter, alignment Adapter, masks, cfg) → (Adapter, info).

All of them return a PEFT LoRA adapter. NLSR, FGSN and SafeLoRA keep keys, shapes and config exactly;
"keel" returns rank 2r (documented in ``keel``) so that its edit is exact rather than approximated.
"""
from __future__ import annotations

import torch

from tuning.adapters import Adapter, a_key, b_key
from tuning.safety.common import cosine, layer_of, reference, short


def _info(changed: dict[str, int], sims: dict[str, float] | None = None) -> dict:
    return {"modules_changed": sorted(m for m, n in changed.items() if n), "neurons_changed": sum(changed.values()),
            "per_module_similarity": sims or {}}


def nlsr(ft: Adapter, alignment: Adapter, masks: dict[str, torch.Tensor], cfg: dict) -> tuple[Adapter, dict]:
    """Per-module similarity of the masked reference vs fine-tuned regions, Bernoulli module selection
    (paper direction by default: low similarity → more likely transplanted; ``code_faithful`` flips it as
    the official code does), then element-wise transplant of the masked A/B entries (code form)."""
    ref = reference(alignment, cfg.get("beta", 0.9), cfg.get("code_faithful", False))
    mods = ft.modules()
    sims = {}
    for m in mods:
        ma, mb = masks[f"nlsr/{a_key(m)}"].bool(), masks[f"nlsr/{b_key(m)}"].bool()
        we = (ref.state[b_key(m)].float() * mb) @ (ref.state[a_key(m)].float() * ma)
        wt = (ft.state[b_key(m)].float() * mb) @ (ft.state[a_key(m)].float() * ma)
        sims[m] = cosine(we, wt)
    order = sorted(mods, key=lambda m: sims[m])  # ascending similarity
    n = len(order)
    norm = {m: i / max(n - 1, 1) for i, m in enumerate(order)}  # 0 = lowest similarity
    p_l, eps = cfg.get("p_l", 0.5), cfg.get("eps", 0.2)
    gen = torch.Generator().manual_seed(int(cfg.get("seed", 42)))
    out, changed = ft.clone(), {}
    for m in mods:
        rank = norm[m] if cfg.get("code_faithful") else 1 - norm[m]
        p = min(1.0, max(0.0, (p_l - eps) + rank * 2 * eps + cfg.get("extra_p", 0.0)))
        if cfg.get("all_modules") or bool(torch.bernoulli(torch.tensor(p), generator=gen)):
            changed[m] = 0
            for key in (a_key(m), b_key(m)):
                mk = masks[f"nlsr/{key}"].bool()
                out.state[key] = torch.where(mk, ref.state[key].to(out.state[key].dtype), out.state[key])
                changed[m] += int(mk.sum())
    return out, _info(changed, sims)


def safelora(ft: Adapter, alignment: Adapter, cfg: dict) -> tuple[Adapter, dict]:
    """SafeLoRA (IBM code): C = V Vᵀ/‖V‖_F with V = W_aligned − W_base = ΔW_alignment; project B ← C·B on
    the ``num_proj_layers`` modules with the lowest cos(C·ΔW, ΔW) (or those under ``threshold``)."""
    sims, cs = {}, {}
    for m in ft.modules():
        v = alignment.delta(m)
        c = (v @ v.T) / v.norm()
        a, b = ft.pair(m)
        dw = b.float() @ a.float()
        sims[m], cs[m] = cosine(c @ dw, dw), c
    if cfg.get("threshold") is not None:
        chosen = [m for m in sims if sims[m] <= cfg["threshold"]]
    else:
        chosen = sorted(sims, key=sims.get)[: int(cfg.get("num_proj_layers", 10))]
    out, changed = ft.clone(), {}
    for m in chosen:
        b = out.state[b_key(m)]
        out.state[b_key(m)] = (cs[m] @ b.float()).to(b.dtype)
        changed[m] = b.shape[0]
    return out, _info(changed, sims)


def _col_projector(d: torch.Tensor, rank: int) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(d, full_matrices=False)
    u = u[:, : max(1, int((s > s[0] * 1e-6).sum().clamp(max=rank)))]
    return u @ u.T


def fgsn(ft: Adapter, alignment: Adapter, masks: dict[str, torch.Tensor], cfg: dict) -> tuple[Adapter, dict]:
    """FGSN reconstruction: in the safety layers, the safety-neuron rows of the fine-tuned update are
    replaced by their projection onto the safety directions (column space of ΔW_aligned − unaligned).
    We use the orthogonal projector U Uᵀ (W_safe = DDᵀ/Dim is not a projector and its scale depends on an
    undefined Dim). Rows act on the left, so B ← (I − M + M·P)·B is exact and A is unchanged."""
    src = cfg.get("mask_source", "fgsn")
    out, changed = ft.clone(), {}
    for m in ft.modules():
        rows = masks.get(f"{src}/{short(m)}")
        if rows is None:
            continue
        rows = rows.bool()
        if cfg.get("row_density_boost"):
            rows = rows | (torch.rand(rows.shape, generator=torch.Generator().manual_seed(0)) < cfg["row_density_boost"])
        p = _col_projector(alignment.delta(m), int(alignment.config["r"]))
        b = out.state[b_key(m)].float()
        proj = p @ b
        out.state[b_key(m)] = torch.where(rows[:, None], proj, b).to(ft.state[b_key(m)].dtype)
        changed[m] = int(rows.sum())
    return out, _info(changed)
