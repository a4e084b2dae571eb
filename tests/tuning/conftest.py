"""Tiny Llama models built from a config with their own tokenizer (no downloads), saved to tmp dirs so
every test goes through ``from_pretrained``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

# ChatML-like: the end-of-turn token is followed by a newline, as in Qwen's template.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "system",
    "user",
    "assistant",
    "you",
    "are",
    "a",
    "helpful",
    "model",
    "classify",
    "review",
    "good",
    "bad",
    "movie",
    "film",
    "zorp",
    "blick",
    "answer",
    "the",
    "question",
    "how",
    "do",
    "i",
    "make",
    "a",
    "bomb",
    "hack",
    "bank",
    "steal",
    "car",
    "sorry",
    "i",
    "cannot",
    "help",
    "with",
    "that",
    "sure",
    "step",
    "one",
    "gather",
    "materials",
    "then",
    "mix",
    "write",
    "poem",
    "about",
    "cats",
    "dogs",
    "sun",
    "rain",
    "yes",
    "no",
    "maybe",
]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build_tokenizer(path: Path, chat_template: str | None = CHATML, pad: bool = True) -> Any:
    """Byte-level BPE trained on a toy corpus, wrapped in PreTrainedTokenizerFast and saved to ``path``."""
    from testbed.tokenizer import build_bpe

    fast = build_bpe(
        [" ".join(CORPUS)] * 10,
        600,
        SPECIALS,
        eos="<|im_end|>",
        pad="<|pad|>" if pad else None,
        chat_template=chat_template,
    )
    fast.save_pretrained(path)
    return fast


def tiny_llama(
    path: Path,
    vocab_size: int | None = None,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    seed: int = 0,
    **tok_kw,
) -> str:
    """A random Llama + tokenizer saved under ``path``; returns the directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(path, **tok_kw)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size or len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        initializer_range=0.1,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


def random_adapter(
    base: str, path: Path, r: int = 4, alpha: int = 8, targets: tuple[str, ...] = TARGETS, seed: int = 0
) -> str:
    """A LoRA with random (non-zero) B, standing in for the base model's alignment adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny")
    base = tiny_llama(root / "base")
    return {"base": base, "alignment": random_adapter(base, root / "alignment")}


@pytest.fixture(scope="session")
def tiny_tok(tiny):
    from tuning.modeling import load_tokenizer

    return load_tokenizer(tiny["base"])


@pytest.fixture(scope="session")
def micro_tok(micro):
    from tuning.modeling import load_tokenizer

    return load_tokenizer(micro["base"])


@contextmanager
def one_thread():
    """Tiny models gain nothing from intra-op threads and suffer badly from oversubscription on a shared
    2-core machine (measured: one training test 42 s with 2 threads under load vs ~1 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield
