"""FGSN (fine-grained safety neurons): safety-neuron rows of the update projected onto the safety directions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tuning.adapters import Adapter, b_key
from tuning.safety.common import change_info, short
from tuning.safety.registry import MethodInputs, Strategy


@dataclass(frozen=True)
class FgsnConfig:
    """FGSN: safety-neuron rows of the update projected onto the alignment delta's column space."""

    mask_source: str = "fgsn"  # which row masks ("fgsn" or "sn_tune")
    row_density_boost: float = 0.0  # also project this fraction of random extra rows


Config = FgsnConfig


def default(seed: int) -> Strategy:
    return Strategy("fgsn", FgsnConfig(), "fgsn")


def apply(inputs: MethodInputs, cfg: FgsnConfig) -> tuple[Adapter, dict]:
    return fgsn(inputs.ft, inputs.alignment, inputs.masks, cfg)


def _col_projector(d: torch.Tensor, rank: int) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(d, full_matrices=False)
    u = u[:, : max(1, int((s > s[0] * 1e-6).sum().clamp(max=rank)))]
    return u @ u.T


def fgsn(ft: Adapter, alignment: Adapter, masks: dict[str, torch.Tensor], cfg: FgsnConfig) -> tuple[Adapter, dict]:
    """In the safety layers, the safety-neuron rows of the fine-tuned update are replaced by their projection
    onto the safety directions (column space of ΔW_aligned − unaligned). We use the orthogonal projector U Uᵀ
    (W_safe = DDᵀ/Dim is not a projector and its scale depends on an undefined Dim). Rows act on the left,
    so B ← (I − M + M·P)·B is exact and A is unchanged."""
    out, changed = ft.clone(), {}
    for m in ft.modules():
        rows = masks.get(f"{cfg.mask_source}/{short(m)}")
        if rows is None:
            continue
        rows = rows.bool()
        if cfg.row_density_boost:
            extra = torch.rand(rows.shape, generator=torch.Generator().manual_seed(0)) < cfg.row_density_boost
            rows = rows | extra
        p = _col_projector(alignment.delta(m), int(alignment.config["r"]))
        b = out.state[b_key(m)].float()
        out.state[b_key(m)] = torch.where(rows[:, None], p @ b, b).to(ft.state[b_key(m)].dtype)
        changed[m] = int(rows.sum())
    return out, change_info(changed)


def reach(ft: Adapter, alignment: Adapter) -> dict:
    """What FGSN's projection can and cannot remove from a fine-tune, whatever the mask.

    At a masked row FGSN keeps the row of P·ΔW_ft (P: the projector onto the alignment delta's column space)
    and drops the rest, so even with every row masked it removes only (I − P)·(ΔW_ft − ΔW_align). A change that
    lies inside the alignment's column space survives any mask: everything the fine-tune did through A
    (B_align·δA lies there) and any move back along −ΔW_align. Returned, over all modules (Frobenius sums):
    ``in_subspace``, the share of ‖ΔW_ft − ΔW_align‖² inside that space (the part no FGSN mask removes);
    ``undo``, the cosine of the change with −ΔW_align (> 0: the fine-tune walks the alignment back);
    ``undo_in_subspace``, the same cosine for the part inside the space (P·ΔW_align = ΔW_align, so both
    share the numerator)."""
    inside = total = dot = norm_a = 0.0
    for m in sorted(set(ft.modules()) & set(alignment.modules())):
        d_align = alignment.delta(m)
        change = ft.delta(m) - d_align
        kept = _col_projector(d_align, int(alignment.config["r"])) @ change
        inside += float(kept.pow(2).sum())
        total += float(change.pow(2).sum())
        dot -= float((change * d_align).sum())
        norm_a += float(d_align.pow(2).sum())
    norm_a, norm_in = norm_a**0.5, inside**0.5
    return {
        "in_subspace": round(inside / total, 4) if total else 0.0,
        "undo": round(dot / (total**0.5 * norm_a), 4) if total and norm_a else 0.0,
        "undo_in_subspace": round(dot / (norm_in * norm_a), 4) if norm_in and norm_a else 0.0,
    }
