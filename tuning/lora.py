"""Attaching LoRA adapters with peft: fresh, or continuing an existing adapter (NLSR's lineage).

NLSR realigns a customer's LoRA against the base model's *alignment* LoRA, which only makes sense when the
customer LoRA is a continuation of it (same rank and modules, initialised from it). ``init_adapter``
implements that: the alignment adapter is loaded trainable and training continues from its weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.nn as nn

from tuning.specs import LoraSpec


def _targets(value: object) -> list[str]:
    """``target_modules`` from an adapter config: a list, or a single name/regex string."""
    if isinstance(value, str):
        return [value]
    return sorted(str(v) for v in (value or []))


def check_init_adapter(init_adapter: str, spec: LoraSpec) -> dict:
    """The adapter's config; ValueError when its rank or target modules differ from ``spec``."""
    path = Path(init_adapter) / "adapter_config.json"
    if not path.exists():
        raise ValueError(f"init adapter {init_adapter!r} has no adapter_config.json")
    cfg = json.loads(path.read_text())
    if int(cfg.get("r", -1)) != spec.r or _targets(cfg.get("target_modules")) != sorted(spec.target_modules):
        raise ValueError(
            f"init adapter r={cfg.get('r')} targets={_targets(cfg.get('target_modules'))} does not "
            f"match spec r={spec.r} targets={sorted(spec.target_modules)}"
        )
    return cfg


def _set_dropout(peft_model: Any, p: float) -> None:
    """The job's dropout applies to a continued adapter too (peft restores the saved one)."""
    for module in peft_model.modules():
        drop = getattr(module, "lora_dropout", None)
        if isinstance(drop, nn.ModuleDict) and "default" in drop:
            drop["default"] = nn.Dropout(p) if p > 0 else nn.Identity()


def attach_lora(model: Any, spec: LoraSpec, init_adapter: str | None = None) -> Any:
    """A trainable PeftModel (task CAUSAL_LM, bias none) with only the LoRA parameters trainable.

    With ``init_adapter`` the adapter is loaded and training continues from it; its rank and target modules
    must equal ``spec``'s (ValueError otherwise). Its own ``lora_alpha`` is kept (the scale is part of the
    lineage), the dropout is the spec's.
    """
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_adapter:
        check_init_adapter(init_adapter, spec)
        peft_model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
        _set_dropout(peft_model, spec.dropout)
        return peft_model
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_report(model: Any) -> dict:
    """Trainable vs total parameter counts (and the trainable percentage)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "pct": round(100.0 * trainable / max(total, 1), 4)}


def detach_lora(model: Any) -> Any:
    """Undo :func:`attach_lora` on the base model it was given, in place, without merging: every LoRA layer is
    replaced by the layer it wraps, peft's ``peft_config`` attribute goes, and every parameter is trainable
    again, as :func:`tuning.modeling.load_model` returns it. A model without LoRA layers is left as it is."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    vars(model).pop("peft_config", None)
    for p in model.parameters():
        p.requires_grad_(True)
    return model.eval()
