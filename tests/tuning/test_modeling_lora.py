"""Model loading (device/dtype, pad token, fallback template, frozen adapter) and LoRA attachment."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.tuning.conftest import random_adapter, tiny_llama
from tuning.lora import attach_lora, trainable_report
from tuning.modeling import load_model, pick_device, pick_dtype
from tuning.rows import FALLBACK_CHAT_TEMPLATE
from tuning.specs import LoraSpec

LORA = LoraSpec(r=4, alpha=8)


def test_device_and_dtype_choice():
    assert pick_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_dtype("cpu") == torch.float32


def test_load_model_from_a_local_dir(tiny):
    model, tok = load_model(tiny["base"], device="cpu")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert tok.pad_token == "<|pad|>" and "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


def test_missing_pad_token_and_chat_template_get_defaults(tmp_path):
    path = tiny_llama(tmp_path / "bare", chat_template=None, pad=False)
    model, tok = load_model(path, device="cpu", dtype=torch.float32)
    assert tok.pad_token == tok.eos_token == "<|im_end|>"
    assert tok.chat_template == FALLBACK_CHAT_TEMPLATE
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], tokenize=False
    )
    assert text == "### User:\nhi<|im_end|>\n### Assistant:\nyo<|im_end|>\n"


def test_load_model_with_an_adapter_is_frozen_and_applies_it(tiny):
    base, tok = load_model(tiny["base"], device="cpu")
    model, _ = load_model(tiny["base"], device="cpu", adapter=tiny["alignment"])
    from peft import PeftModel

    assert isinstance(model, PeftModel) and not model.training
    assert trainable_report(model)["trainable"] == 0
    ids = torch.tensor([tok.encode("classify review good movie")])
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, base(ids).logits)


def test_fresh_lora_trains_only_lora_parameters(tiny):
    model, _ = load_model(tiny["base"], device="cpu")
    total = sum(p.numel() for p in model.parameters())
    peft_model = attach_lora(model, LORA)
    rep = trainable_report(peft_model)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert len(names) == 2 * 2 * len(LORA.target_modules)  # A and B, 2 layers
    assert rep["total"] == total + rep["trainable"] and 0 < rep["pct"] < 100
    cfg = peft_model.peft_config["default"]
    assert cfg.r == 4 and cfg.lora_alpha == 8 and cfg.bias == "none" and cfg.task_type == "CAUSAL_LM"


def test_continuing_an_adapter_starts_from_its_weights(tiny):
    model, _ = load_model(tiny["base"], device="cpu")
    peft_model = attach_lora(model, LoraSpec(r=4, alpha=8, dropout=0.1), init_adapter=tiny["alignment"])
    saved = load_file(f"{tiny['alignment']}/adapter_model.safetensors")
    state = {n.replace(".default", ""): p for n, p in peft_model.named_parameters() if "lora_" in n}
    assert set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in saved)
    assert all(p.requires_grad for p in state.values())
    drops = [m.lora_dropout["default"] for m in peft_model.modules() if hasattr(m, "lora_dropout")]
    assert drops and all(isinstance(d, torch.nn.Dropout) and d.p == 0.1 for d in drops)


def test_continuing_a_mismatched_adapter_raises(tiny, tmp_path):
    model, _ = load_model(tiny["base"], device="cpu")
    with pytest.raises(ValueError, match="does not match"):
        attach_lora(model, LoraSpec(r=8, alpha=16), init_adapter=tiny["alignment"])
    other = random_adapter(tiny["base"], tmp_path / "qv", targets=("q_proj", "v_proj"))
    with pytest.raises(ValueError, match="does not match"):
        attach_lora(model, LORA, init_adapter=other)
    assert json.loads((tmp_path / "qv" / "adapter_config.json").read_text())["r"] == LORA.r
    with pytest.raises(ValueError, match="adapter_config.json"):
        attach_lora(model, LORA, init_adapter=str(tmp_path / "nowhere"))
