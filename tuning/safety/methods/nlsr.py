"""NLSR (Yi et al., "NLSR: Neuron-Level Safety Realignment"): element-wise transplant from the aligned reference."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tuning.adapters import Adapter, a_key, b_key
from tuning.safety.common import change_info, cosine, reference
from tuning.safety.registry import MethodInputs, Strategy


@dataclass(frozen=True)
class NlsrConfig:
    """NLSR (Yi et al.): transplant the masked entries of the extrapolated alignment LoRA into the modules
    whose masked regions differ most from it (Bernoulli selection by similarity rank)."""

    beta: float = 0.9  # reference = (1+β)·ΔW_alignment
    code_faithful: bool = False  # the official code's choices (A and B scaled by 2β; high similarity → transplant)
    p_l: float = 0.5  # mean selection probability
    eps: float = 0.2  # spread of the selection probability around p_l
    extra_p: float = 0.0  # added to every module's selection probability
    all_modules: bool = False  # transplant into every module
    seed: int = 42  # of the Bernoulli selection


Config = NlsrConfig


def default(seed: int) -> Strategy:
    return Strategy("nlsr", NlsrConfig(seed=seed), "nlsr(published)")


def ladder(seed: int) -> list[Strategy]:
    """From the published form to every module with the official code's reference, weakest first. The rungs
    reuse one cached mask (top entries are unchanged by scaling the reference) and cost well under a second."""
    every = [(0.9, False, "nlsr(all modules)"), (1.2, False, "nlsr(all modules, beta 1.2)")]
    every += [(1.5, False, "nlsr(all modules, beta 1.5)"), (0.9, True, "nlsr(all modules, code reference)")]
    rungs = [
        Strategy("nlsr", NlsrConfig(seed=seed, all_modules=True, beta=b, code_faithful=c), label)
        for b, c, label in every
    ]
    return [default(seed), *rungs]


def apply(inputs: MethodInputs, cfg: NlsrConfig) -> tuple[Adapter, dict]:
    return nlsr(inputs.ft, inputs.alignment, inputs.masks, cfg)


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
