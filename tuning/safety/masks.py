"""Safety-neuron masks, computed once per base model and cached on disk.

Sources (all computed on the aligned model = base + alignment LoRA, from a safety corpus of harmful
prompts with refusals and benign prompts with answers):
- nlsr:    entry masks on the reference LoRA's A and B (low-rank projection with activations, then the
           top (1-P_SR) entries of |Ŵ|, selected globally per matrix as the official code does; retained
           rank r* = ceil(r·(1-P_SR)) as in the paper, not the code's int(r·P_SR)).
- fgsn:    safety layers (where last-token hidden states of harmful vs benign prompts diverge most) and
           row masks of fine-grained neurons: Wanda row score on harmful inputs, top-q%, minus the top-p%
           rows on benign inputs.
- sn_tune: FFN neurons whose activation·‖W_down[:,k]‖ is in the top-q% for EVERY harmful query
           (intersection across queries, SN-Tune's accelerated detection), as row masks.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tuning.adapters import Adapter, a_key, b_key, read_adapter
from tuning.atomic import atomic_dir
from tuning.data import encode_prompts
from tuning.safety import activations as act
from tuning.safety.common import layer_of, leaf, reference, short
from tuning.safety.methods.nlsr import NlsrConfig


@dataclass(frozen=True)
class MaskConfig:
    """How the masks are computed (an admin's mask recompute may override any field)."""

    p_sr: float = 0.8  # NLSR: fraction of reference-LoRA entries that are not safety-critical
    beta: float = NlsrConfig.beta  # NLSR: reference = (1+β)·ΔW_alignment (the same reference realignment uses)
    code_faithful: bool = NlsrConfig.code_faithful
    fgsn_q: float = 0.05  # FGSN: top fraction of rows on harmful inputs ...
    fgsn_p: float = 0.05  # ... minus the top fraction on benign inputs
    fgsn_layer_frac: float = 0.5  # FGSN: fraction of layers that are safety layers
    sn_q: float = 0.1  # SN-Tune: top fraction of FFN neurons per harmful query
    max_samples: int = 256  # corpus rows per kind

    @classmethod
    def from_dict(cls, config: dict | None) -> MaskConfig:
        """The defaults overridden by the known keys of ``config`` (other keys are ignored)."""
        return cls(**{k: v for k, v in (config or {}).items() if k in {f.name for f in fields(cls)}})


def _top_mask(x: torch.Tensor, keep_frac: float) -> torch.Tensor:
    k = max(1, int(round(x.numel() * keep_frac)))
    thr = x.flatten().topk(k).values.min()
    return x >= thr


def _projected(mat: torch.Tensor, gram_in: torch.Tensor, q: int) -> torch.Tensor:
    """NLSR's Ŵ = V Vᵀ M with V the top-q output directions of M·X (via the Gram: M G Mᵀ)."""
    m = mat.float()
    cov = m @ gram_in @ m.T
    _, vecs = torch.linalg.eigh(cov)
    v = vecs[:, -q:]
    return v @ (v.T @ m)


def nlsr_masks(ref: Adapter, grams: dict[str, dict], p_sr: float) -> dict[str, torch.Tensor]:
    out = {}
    for m in ref.modules():
        a, b = ref.pair(m)
        g = grams[short(m)]["gram"]
        q_a = max(1, math.ceil(a.shape[0] * (1 - p_sr)))
        q_b = max(1, math.ceil(min(b.shape) * (1 - p_sr)))
        a_hat = _projected(a, g, q_a)
        b_hat = _projected(b, a.float() @ g @ a.float().T, q_b)
        out[a_key(m)] = _top_mask(a_hat.abs(), 1 - p_sr)
        out[b_key(m)] = _top_mask(b_hat.abs(), 1 - p_sr)
    return out


def safety_layers(model: Any, tok: Any, harmful: list[str], benign: list[str], frac: float) -> list[int]:
    """Layers where mean last-token cosine(harmful, benign) drops most relative to the previous layer."""
    h = act.last_token_states(model, tok, harmful)
    b = act.last_token_states(model, tok, benign)
    hn, bn = torch.nn.functional.normalize(h.mean(1), dim=-1), torch.nn.functional.normalize(b.mean(1), dim=-1)
    sim = (hn * bn).sum(-1)[1:]  # per decoder layer
    gap = torch.cat([1 - sim[:1], sim[:-1] - sim[1:]])
    k = max(1, round(len(gap) * frac))
    return sorted(int(i) for i in gap.topk(k).indices)


def wanda_rows(weight: torch.Tensor, gram: dict) -> torch.Tensor:
    col = (torch.diagonal(gram["gram"]) / max(gram["n"], 1)).clamp_min(0).sqrt()
    return (weight.float().abs() * col[None, :]).sum(1)


def fgsn_masks(
    model: Any, grams_h: dict, grams_b: dict, layers: list[int], q: float, p: float
) -> dict[str, torch.Tensor]:
    out = {}
    for name, lin in act.target_linears(model, tuple(k.rsplit(".", 1)[-1] for k in grams_h)).items():
        if layer_of(name) not in layers:
            continue
        harm = _top_mask(wanda_rows(lin.weight, grams_h[name]), q)
        good = _top_mask(wanda_rows(lin.weight, grams_b[name]), p)
        out[name] = harm & ~good
    return out


@torch.inference_mode()
def sn_tune_masks(model: Any, tok: Any, harmful: list[str], q: float) -> dict[str, torch.Tensor]:
    """FFN neurons important for every harmful query: score_k = mean|h_k|·‖W_down[:,k]‖, top-q per query."""
    downs = act.target_linears(model, ("down_proj",))
    per_query: dict[str, torch.Tensor] = {}
    handles, holder = [], {}

    def hook(name: str, norms: torch.Tensor) -> Callable[..., None]:
        def fn(_m: torch.nn.Module, args: tuple, _o: torch.Tensor) -> None:
            h = args[0].float().abs() * holder["mask"][..., None]
            score = (h.sum(1) / holder["mask"].sum(1, keepdim=True).clamp_min(1)) * norms  # [batch, inter]
            keep = torch.stack([_top_mask(s, q) for s in score.cpu()])
            prev = per_query.get(name)
            per_query[name] = keep.all(0) if prev is None else prev & keep.all(0)

        return fn

    try:
        for name, lin in downs.items():
            handles.append(lin.register_forward_hook(hook(name, lin.weight.float().norm(dim=0))))
        for i in range(0, len(harmful), 16):
            enc = encode_prompts(tok, harmful[i : i + 16], padding_side="right").to(next(model.parameters()).device)
            holder["mask"] = enc["attention_mask"].float()
            model(**enc)
    finally:
        for h in handles:
            h.remove()
    return {name.replace("down_proj", "up_proj"): m for name, m in per_query.items()}


def _save(out_dir: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    with atomic_dir(out_dir) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "masks.safetensors"))
        (tmp / "masks.json").write_text(json.dumps(meta, indent=2))


def load_masks(path: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors keyed 'nlsr/<adapter key>', 'fgsn/<module>', 'sn_tune/<module>'), meta."""
    p = Path(path)
    return load_file(str(p / "masks.safetensors")), json.loads((p / "masks.json").read_text())


def _density(masks: dict[str, torch.Tensor]) -> float:
    total = sum(m.numel() for m in masks.values())
    return round(sum(int(m.sum()) for m in masks.values()) / max(total, 1), 5)


def compute_safety_masks(
    base_dir: str,
    alignment_adapter_dir: str,
    safety_corpus: list[dict],
    method: str,
    config: dict,
    out_dir: str,
    device: str | None = None,
) -> dict:
    """Compute the requested mask source(s) ("all", "nlsr", "fgsn", "sn_tune") and write them to out_dir."""
    from tuning.modeling import load_model

    cfg = MaskConfig.from_dict(config)
    started = time.monotonic()
    alignment = read_adapter(alignment_adapter_dir)
    targets = tuple(sorted({leaf(m) for m in alignment.modules()}))
    model, tok = load_model(base_dir, device=device, adapter=alignment_adapter_dir)
    harmful = [r for r in safety_corpus if r.get("kind") == "harmful"][: cfg.max_samples]
    benign = [r for r in safety_corpus if r.get("kind") == "benign"][: cfg.max_samples]
    if not harmful or not benign:
        raise ValueError("the safety corpus needs rows of kind 'harmful' and 'benign'")
    tensors: dict[str, torch.Tensor] = {}
    stats: dict = {"method": method, "config": asdict(cfg), "n_harmful": len(harmful), "n_benign": len(benign)}
    grams_h = act.collect(model, tok, harmful, targets, prompt_only=True)
    grams_b = act.collect(model, tok, benign, targets, prompt_only=True)
    if method in ("all", "nlsr"):
        resp = act.collect(model, tok, harmful, targets, prompt_only=False)
        nl = nlsr_masks(reference(alignment, cfg.beta, cfg.code_faithful), resp, cfg.p_sr)
        tensors.update({f"nlsr/{k}": v for k, v in nl.items()})
        stats["nlsr_density"] = _density(nl)
    if method in ("all", "fgsn"):
        layers = safety_layers(
            model, tok, [r["prompt"] for r in harmful], [r["prompt"] for r in benign], cfg.fgsn_layer_frac
        )
        fg = fgsn_masks(model, grams_h, grams_b, layers, cfg.fgsn_q, cfg.fgsn_p)
        tensors.update({f"fgsn/{k}": v for k, v in fg.items()})
        stats.update(fgsn_layers=layers, fgsn_rows=sum(int(v.sum()) for v in fg.values()), fgsn_density=_density(fg))
    if method in ("all", "sn_tune"):
        sn = sn_tune_masks(model, tok, [r["prompt"] for r in harmful], cfg.sn_q)
        tensors.update({f"sn_tune/{k}": v for k, v in sn.items()})
        stats["sn_tune_neurons"] = sum(int(v.sum()) for v in sn.values())
    stats["compute_s"] = round(time.monotonic() - started, 2)
    _save(out_dir, {k: (v.to(torch.uint8) if v.dtype == torch.bool else v) for k, v in tensors.items()}, stats)
    return stats
