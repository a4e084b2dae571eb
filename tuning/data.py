"""Chat-format rows → normalized messages → token ids with loss only on assistant tokens.

Accepted rows (one JSON object per JSONL line):

* OpenAI chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str,
  "weight": 0|1 (assistant only, optional), "name": str (optional)}, ...]}``
* prompt/completion: ``{"prompt": str, "completion": str}`` → a user turn and an assistant turn.

Bad rows raise :class:`RowError` whose ``code`` is one of ``ERROR_CODES``.
"""
from __future__ import annotations

import json
from typing import Any

import torch

ROLES = ("system", "user", "assistant")
ERROR_CODES = ("invalid_json", "invalid_format", "missing_messages", "invalid_role", "empty_content",
               "no_assistant_turn", "too_long")


class RowError(ValueError):
    """A bad training row; ``code`` is machine-readable (one of ``ERROR_CODES``), the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _message(i: int, m: Any) -> dict:
    if not isinstance(m, dict):
        raise RowError("invalid_format", f"messages[{i}] is not an object")
    role, content = m.get("role"), m.get("content")
    if role not in ROLES:
        raise RowError("invalid_role", f"messages[{i}].role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise RowError("invalid_format", f"messages[{i}].content must be a string")
    if not content.strip():
        raise RowError("empty_content", f"messages[{i}].content is empty")
    out = {"role": role, "content": content}
    if "name" in m:
        if not isinstance(m["name"], str) or not m["name"].strip():
            raise RowError("invalid_format", f"messages[{i}].name must be a non-empty string")
        out["name"] = m["name"]
    if "weight" in m:
        weight = m["weight"]
        if role != "assistant" or isinstance(weight, bool) or weight not in (0, 1):
            raise RowError("invalid_format", f"messages[{i}].weight must be 0 or 1 and only on assistant messages")
        out["weight"] = int(weight)
    return out


def _as_chat(obj: dict) -> dict:
    """prompt/completion rows become a user + assistant chat."""
    if "messages" in obj:
        return obj
    if "prompt" in obj or "completion" in obj:
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise RowError("invalid_format", "'prompt' and 'completion' must both be strings")
        return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]}
    raise RowError("missing_messages", "line has no 'messages' list (nor 'prompt' and 'completion')")


def normalize_row(obj: object) -> list[dict]:
    """Validated message list ``[{"role", "content", ["weight"], ["name"]}]`` or :class:`RowError`."""
    if not isinstance(obj, dict):
        raise RowError("invalid_format", "line must be a JSON object")
    msgs = _as_chat(obj)["messages"]
    if not isinstance(msgs, list) or not msgs:
        raise RowError("missing_messages", "'messages' must be a non-empty list")
    messages = [_message(i, m) for i, m in enumerate(msgs)]
    if not any(m["role"] == "assistant" for m in messages):
        raise RowError("no_assistant_turn", "example has no assistant message to learn from")
    if not any(m["role"] == "assistant" and m.get("weight", 1) == 1 for m in messages):
        raise RowError("no_assistant_turn", "every assistant message has weight 0: nothing to learn from")
    return messages


def parse_line(line: str | bytes) -> list[dict]:
    """One JSONL line → normalized messages (``invalid_json`` when it does not parse)."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RowError("invalid_json", f"line is not valid JSON: {exc}") from exc
    return normalize_row(obj)


def check_length(tokenizer, messages: list[dict], max_len: int) -> int:  # noqa: ANN001
    """Token count of the conversation; ``too_long`` when it exceeds ``max_len``."""
    n = count_tokens(tokenizer, messages)
    if n > max_len:
        raise RowError("too_long", f"example has {n} tokens; the limit is {max_len}")
    return n


def _template_view(messages: list[dict]) -> list[dict]:
    """What the chat template sees: role, content and (if given) name; training-only keys dropped."""
    return [{k: m[k] for k in ("role", "content", "name") if k in m} for m in messages]


def _ids(tokenizer, messages: list[dict], generation_prompt: bool = False) -> list[int]:  # noqa: ANN001
    if not messages:
        return []
    try:
        out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    except Exception as exc:  # noqa: BLE001 - jinja raises TemplateError/others for e.g. non-alternating roles
        raise RowError("invalid_format", f"the model's chat template rejects this conversation: {exc}") from exc
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def encode_example(tokenizer, messages: list[dict], max_len: int | None = None,  # noqa: ANN001
                   all_tokens: bool = False) -> dict[str, list[int]]:
    """Token ids of the chat-templated conversation; labels are -100 except on assistant turns with
    weight 1: the turn's content plus whatever the template closes the turn with (end-of-turn token).
    ``all_tokens=True``: language-model loss on every token (used for pretraining).

    Each assistant turn's span is found by rendering the conversation before it with the generation
    prompt (span start) and through it (span end), so any template is handled without
    ``{% generation %}`` markers. Spans are measured as the common token prefix with the full render,
    so a tokenizer that merges across the turn boundary shifts the span by a token instead of
    mislabelling the rest. ``max_len`` truncates, keeping the start.
    """
    view = _template_view(messages)
    input_ids = _ids(tokenizer, view)
    labels = list(input_ids) if all_tokens else [-100] * len(input_ids)
    for i, m in enumerate([] if all_tokens else messages):
        if m["role"] != "assistant" or m.get("weight", 1) == 0:
            continue
        start = _common_prefix(_ids(tokenizer, view[:i], generation_prompt=True), input_ids)
        end = _common_prefix(_ids(tokenizer, view[: i + 1]), input_ids)
        labels[start:end] = input_ids[start:end]
    if max_len is not None:
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return {"input_ids": input_ids, "labels": labels}


def count_tokens(tokenizer, messages: list[dict]) -> int:  # noqa: ANN001
    """Length of the chat-templated conversation in tokens (what training sees before truncation)."""
    return len(_ids(tokenizer, _template_view(messages)))


def collate(batch: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (-100 on padding)."""
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[row, :n] = torch.tensor(b["input_ids"], dtype=torch.long)
        labels[row, :n] = torch.tensor(b["labels"], dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
