"""SafeLoRA (Hsu et al., IBM code): project B onto the alignment subspace in the least aligned modules."""

from __future__ import annotations

from dataclasses import dataclass

from tuning.adapters import Adapter, b_key
from tuning.safety.common import change_info, cosine
from tuning.safety.registry import MethodInputs, Strategy


@dataclass(frozen=True)
class SafeLoraConfig:
    """SafeLoRA (Hsu et al.): project B onto the alignment subspace in the least aligned modules."""

    num_proj_layers: int = 10  # project the modules with the lowest cosine ...
    threshold: float | None = None  # ... or every module whose cosine is at most this


Config = SafeLoraConfig


def default(seed: int) -> Strategy:
    return Strategy("safelora", SafeLoraConfig(), "safelora(10 modules)")


def apply(inputs: MethodInputs, cfg: SafeLoraConfig) -> tuple[Adapter, dict]:
    return safelora(inputs.ft, inputs.alignment, cfg)


def safelora(ft: Adapter, alignment: Adapter, cfg: SafeLoraConfig) -> tuple[Adapter, dict]:
    """C = V Vᵀ/‖V‖_F with V = W_aligned − W_base = ΔW_alignment; project B ← C·B on the ``num_proj_layers``
    modules with the lowest cos(C·ΔW, ΔW) (or those under ``threshold``)."""
    sims, cs = {}, {}
    for m in ft.modules():
        v = alignment.delta(m)
        c = (v @ v.T) / v.norm()
        a, b = ft.pair(m)
        dw = b.float() @ a.float()
        sims[m], cs[m] = cosine(c @ dw, dw), c
    if cfg.threshold is not None:
        chosen = [m for m in sims if sims[m] <= cfg.threshold]
    else:
        chosen = sorted(sims, key=lambda m: sims[m])[: cfg.num_proj_layers]
    out, changed = ft.clone(), {}
    for m in chosen:
        b = out.state[b_key(m)]
        out.state[b_key(m)] = (cs[m] @ b.float()).to(b.dtype)
        changed[m] = b.shape[0]
    return out, change_info(changed, sims)
