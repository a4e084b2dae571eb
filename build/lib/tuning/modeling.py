"""Loading HF causal LMs (local path or hub name) on the right device and dtype."""

from __future__ import annotations

from typing import Any

import torch

from tuning.rows import FALLBACK_CHAT_TEMPLATE


def pick_device() -> str:
    """ "cuda" when a GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str) -> torch.dtype:
    """bfloat16 on CUDA devices that support it, float32 otherwise (CPU training stays exact)."""
    if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(path: str) -> Any:
    """AutoTokenizer with a pad token (EOS when it has none) and a chat template (fallback if none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = FALLBACK_CHAT_TEMPLATE
    return tok


def load_model(
    path: str, device: str | None = None, dtype: torch.dtype | None = None, adapter: str | None = None
) -> tuple[Any, Any]:
    """``(model, tokenizer)``, the model in eval mode on ``device`` (default :func:`pick_device`) in
    ``dtype`` (default :func:`pick_dtype`). ``adapter``: a PEFT adapter dir applied on top, not trainable."""
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or pick_dtype(device)).to(device)
    tok = load_tokenizer(path)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    return model.eval(), tok
