"""Training rows without torch: JSONL parsing, normalization and chat-template token counts.

Shared by upload validation (the service) and training (``tuning.data``), so both accept the same rows and
count the same tokens. Standard library only at import; ``tokenizer`` arguments are duck-typed Hugging Face
tokenizers.

Accepted rows (one JSON object per JSONL line):

* OpenAI chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str,
  "weight": 0|1 (assistant only, optional), "name": str (optional)}, ...]}``
* prompt/completion: ``{"prompt": str, "completion": str}`` → a user turn and an assistant turn.

Bad rows raise :class:`RowError` whose ``code`` is one of ``ERROR_CODES``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

ROLES = ("system", "user", "assistant")
ERROR_CODES = (
    "invalid_json",
    "invalid_format",
    "missing_messages",
    "invalid_role",
    "empty_content",
    "no_assistant_turn",
    "too_long",
)

# Used when a tokenizer ships no chat template (plain base models): plain-text role headers, the tokenizer's
# EOS closes every turn (so end-of-turn is learned and generation stops on EOS).
FALLBACK_CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{% for m in messages %}### {{ m['role'] | capitalize }}:\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


MAX_QUOTED = 64  # characters of a user's value quoted in an error message


def quoted(value: Any, limit: int = MAX_QUOTED) -> str:
    """``repr(value)`` cut to ``limit`` characters (a user's 4 MiB string never becomes a 4 MiB message)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


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
        raise RowError("invalid_role", f"messages[{i}].role {quoted(role)} is not one of {', '.join(ROLES)}")
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
        return {"messages": conversation(prompt, completion)}
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


def parse_line(raw: str | bytes) -> list[dict]:
    """One JSONL line → normalized messages (``invalid_json`` when it does not parse)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RowError("invalid_json", f"line is not valid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise RowError("invalid_json", f"line is not valid JSON: {exc.reason}") from exc
    return normalize_row(obj)


MAX_LINE_BYTES = 4 * 1024 * 1024


def iter_lines(fh: BinaryIO, max_line: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, raw line) of a JSONL stream, split on ``\n`` only: the one line reader of upload
    validation and of the worker, so both see the same lines (``str.splitlines`` would also split on
    U+2028/U+2029/U+0085, which a JSON string may hold unescaped). ``raw`` is None for a line over
    ``max_line`` bytes, whose rest is skipped without being held in memory."""
    max_line = max_line or MAX_LINE_BYTES
    lineno = 0
    while raw := fh.readline(max_line + 1):
        lineno += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield lineno, None
        else:
            yield lineno, raw


def _stream(data: bytes | str | BinaryIO) -> BinaryIO:
    if isinstance(data, str):
        return io.BytesIO(data.encode("utf-8"))
    return io.BytesIO(data) if isinstance(data, bytes) else data


def read_jsonl(data: bytes | str | BinaryIO) -> list[dict]:
    """The JSON value of every non-blank line (no validation: a bad line raises ``json.JSONDecodeError``)."""
    return [json.loads(raw) for _, raw in iter_lines(_stream(data), 1 << 62) if raw and raw.strip()]


def read_examples(data: bytes | str | BinaryIO) -> list[list[dict]]:
    """Normalized messages of every non-blank line of an already-validated file, read line by line from a
    stream (or bytes) with :func:`iter_lines`."""
    out = []
    for _, raw in iter_lines(_stream(data)):
        if raw is None:
            raise RowError("line_too_long", f"line is longer than {MAX_LINE_BYTES} bytes")
        if raw.strip():
            out.append(parse_line(raw))
    return out


def conversation(prompt: str, answer: str | None = None) -> list[dict]:
    """A single-turn chat: the user's ``prompt`` and, if given, the assistant's ``answer``."""
    turns = [{"role": "user", "content": prompt}]
    return turns + ([{"role": "assistant", "content": answer}] if answer is not None else [])


def _template_view(messages: list[dict]) -> list[dict]:
    """What the chat template sees: role, content and (if given) name; training-only keys dropped."""
    return [{k: m[k] for k in ("role", "content", "name") if k in m} for m in messages]


def render_chat(tokenizer: Any, messages: list[dict], generation_prompt: bool = False, tokenize: bool = False) -> Any:
    """The tokenizer's chat template applied to ``messages`` (text, or token ids with ``tokenize``); a tokenizer
    without a template uses :data:`FALLBACK_CHAT_TEMPLATE`, as :func:`tuning.modeling.load_tokenizer` sets it."""
    template = None if getattr(tokenizer, "chat_template", None) else FALLBACK_CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        _template_view(messages), chat_template=template, tokenize=tokenize, add_generation_prompt=generation_prompt
    )


def chat_ids(tokenizer: Any, messages: list[dict], generation_prompt: bool = False) -> list[int]:
    """Token ids of the chat-templated conversation; ``invalid_format`` when the template rejects it."""
    if not messages:
        return []
    try:
        out = render_chat(tokenizer, messages, generation_prompt, tokenize=True)
    except Exception as exc:  # jinja raises TemplateError/others for e.g. non-alternating roles
        reason = str(exc)[:200]
        raise RowError("invalid_format", f"the model's chat template rejects this conversation: {reason}") from exc
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def count_tokens(tokenizer: Any, messages: list[dict]) -> int:
    """Length of the chat-templated conversation in tokens (what training sees before truncation)."""
    return len(chat_ids(tokenizer, messages))
