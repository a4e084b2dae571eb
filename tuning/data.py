"""Normalized chat messages → token ids with loss only on assistant tokens, and padded or packed batches.

Row parsing and validation live in :mod:`tuning.rows` (torch-free, shared with upload validation).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch

from tuning.rows import chat_ids, conversation, render_chat


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def encode_example(
    tokenizer: Any, messages: list[dict], max_len: int | None = None, all_tokens: bool = False
) -> dict[str, list[int]]:
    """Token ids of the chat-templated conversation; labels are -100 except on assistant turns with
    weight 1: the turn's content plus whatever the template closes the turn with (end-of-turn token).
    ``all_tokens=True``: language-model loss on every token.

    Each assistant turn's span is found by rendering the conversation before it with the generation
    prompt (span start) and through it (span end), so any template is handled without
    ``{% generation %}`` markers. Spans are measured as the common token prefix with the full render,
    so a tokenizer that merges across the turn boundary shifts the span by a token instead of
    mislabelling the rest. ``max_len`` truncates, keeping the start.
    """
    input_ids = chat_ids(tokenizer, messages)
    labels = list(input_ids) if all_tokens else [-100] * len(input_ids)
    for i, m in enumerate([] if all_tokens else messages):
        if m["role"] != "assistant" or m.get("weight", 1) == 0:
            continue
        start = _common_prefix(chat_ids(tokenizer, messages[:i], generation_prompt=True), input_ids)
        end = _common_prefix(chat_ids(tokenizer, messages[: i + 1]), input_ids)
        labels[start:end] = input_ids[start:end]
    if max_len is not None:
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return {"input_ids": input_ids, "labels": labels}


def compact(example: dict[str, list[int]]) -> dict[str, Sequence[int]]:
    """An encoded example as two int32 arrays: 8 bytes per token instead of ~72 for two lists of Python ints,
    so a worker holding a whole training file's tokens stays within a few bytes per token (issue 19 item 5)."""
    return {k: array("i", v) for k, v in example.items()}


def _long(seq: Sequence[int]) -> torch.Tensor:
    if isinstance(seq, array) and seq.typecode == "i" and len(seq):
        return torch.frombuffer(seq, dtype=torch.int32).long()
    return torch.tensor(seq, dtype=torch.long)


def collate(batch: Sequence[dict[str, Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (-100 on padding)."""
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[row, :n] = _long(b["input_ids"])
        labels[row, :n] = _long(b["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pack(batch: Sequence[dict[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
    """The examples of ``batch`` concatenated into one row, without padding: input_ids, labels, position_ids
    (1 x total tokens). Positions restart at 0 for every example, which is what keeps examples apart: with no
    attention_mask, transformers reads the restarts as sequence boundaries (block-diagonal causal mask for
    SDPA/eager, varlen kernels for flash attention). Each example's first label is -100, so no example
    learns to predict the next example's first token."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for b in batch:
        n = len(b["input_ids"])
        ids += b["input_ids"]
        labels += [-100] + list(b["labels"][1:n])
        positions += range(n)
    as_row = partial(torch.tensor, dtype=torch.long)
    return {"input_ids": as_row([ids]), "labels": as_row([labels]), "position_ids": as_row([positions])}


def encode_conversations(
    tokenizer: Any, conversations: Sequence[list[dict]], max_len: int | None = None
) -> dict[str, torch.Tensor]:
    """One right-padded training batch (:func:`encode_example` + :func:`collate`)."""
    return collate([encode_example(tokenizer, c, max_len) for c in conversations], tokenizer.pad_token_id)


def encode_prompts(
    tokenizer: Any, prompts: Sequence[str], padding_side: str = "left", max_len: int | None = None
) -> Any:
    """Single-turn user chats rendered with the generation prompt, as one padded batch (input_ids,
    attention_mask; a ``BatchEncoding``). Left padding (the default) puts every prompt's last token in the
    final column."""
    texts = [render_chat(tokenizer, conversation(p), generation_prompt=True) for p in prompts]
    side, tokenizer.padding_side = tokenizer.padding_side, padding_side
    try:
        return tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
            truncation=max_len is not None,
            max_length=max_len,
        )
    finally:
        tokenizer.padding_side = side
