"""NLSR (Yi et al., "NLSR: Neuron-Level Safety Realignment"): element-wise transplant from the aligned reference."""

from __future__ import annotations

import torch

from tuning.adapters import Adapter, a_key, b_key
from tuning.safety.common import change_info, cosine, reference
from tuning.safety.registry import NlsrConfig


def nlsr(ft: Adapter, alignment: Adapter, masks: dict[str, torch.Tensor], cfg: NlsrConfig) -> tuple[Adapter, dict]:
    """Per-module similarity of the masked reference vs fine-tuned regions, Bernoulli module selection
    (paper direction by default: low similarity → more likely transplanted; ``code_faithful`` flips it as
    the official code does), then element-wise transplant of the masked A/B entries (code form)."""
    ref = reference(alignment, cfg.beta, cfg.code_faithful)
    mods = ft.modules()
    sims = {}
    for m in mods:
        ma, mb = masks[f"nlsr/{a_key(m)}"].bool(), masks[f"nlsr/{b_key(m)}"].bool()
        we = (ref.state[b_key(m)].float() * mb) @ (ref.state[a_key(m)].float() * ma)
        wt = (ft.state[b_key(m)].float() * mb) @ (ft.state[a_key(m)].float() * ma)
        sims[m] = cosine(we, wt)
    order = sorted(mods, key=lambda m: sims[m])  # ascending similarity
    norm = {m: i / max(len(order) - 1, 1) for i, m in enumerate(order)}  # 0 = lowest similarity
    gen = torch.Generator().manual_seed(cfg.seed)
    out, changed = ft.clone(), {}
    for m in mods:
        rank = norm[m] if cfg.code_faithful else 1 - norm[m]
        p = min(1.0, max(0.0, (cfg.p_l - cfg.eps) + rank * 2 * cfg.eps + cfg.extra_p))
        if cfg.all_modules or bool(torch.bernoulli(torch.tensor(p), generator=gen)):
            changed[m] = 0
            for key in (a_key(m), b_key(m)):
                mk = masks[f"nlsr/{key}"].bool()
                out.state[key] = torch.where(mk, ref.state[key].to(out.state[key].dtype), out.state[key])
                changed[m] += int(mk.sum())
    return out, change_info(changed, sims)
