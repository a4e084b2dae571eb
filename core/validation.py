"""Line-by-line validation of fine-tuning JSONL files, with token statistics when a tokenizer is given.

Every bad line is reported with its 1-based line number, a machine-readable code and a reason.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tuning.rows import RowError, count_tokens, normalize_row

MAX_REPORTED_ERRORS = 100


@lru_cache(maxsize=8)
def load_tokenizer(path: str):  # noqa: ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _parse_line(raw: str) -> list[dict]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RowError("invalid_json", f"line is not valid JSON: {exc.msg}") from exc
    return normalize_row(obj)


def _token_stats(counts: list[int]) -> dict[str, Any]:
    if not counts:
        return {}
    ordered = sorted(counts)
    return {
        "total_tokens": sum(counts),
        "min_tokens": ordered[0],
        "max_tokens": ordered[-1],
        "mean_tokens": round(sum(counts) / len(counts), 1),
        "p95_tokens": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


def validate_jsonl(data: bytes, tokenizer=None, context_length: int | None = None) -> dict:  # noqa: ANN001
    """Return {"valid", "n_lines", "n_examples", "errors": [{line, code, message}], token stats...}."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _report(0, [], [{"line": None, "code": "invalid_encoding", "message": "file is not UTF-8"}], [])
    errors: list[dict] = []
    examples: list[list[dict]] = []
    counts: list[int] = []
    lines = text.splitlines()
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            messages = _parse_line(raw)
            if tokenizer is not None:
                n = count_tokens(tokenizer, messages)
                if context_length and n > context_length:
                    raise RowError("too_long", f"example has {n} tokens; the model's context is {context_length}")
                counts.append(n)
        except RowError as exc:
            errors.append({"line": lineno, "code": exc.code, "message": str(exc)})
            continue
        examples.append(messages)
    return _report(len(lines), examples, errors, counts)


def _report(n_lines: int, examples: list, errors: list[dict], counts: list[int]) -> dict:
    if n_lines and not examples and not errors:
        errors.append({"line": None, "code": "empty_file", "message": "file has no examples"})
    elif not n_lines:
        errors.append({"line": None, "code": "empty_file", "message": "file is empty"})
    return {
        "valid": not errors,
        "n_lines": n_lines,
        "n_examples": len(examples),
        "n_errors": len(errors),
        "errors": errors[:MAX_REPORTED_ERRORS],
        "tokens": _token_stats(counts),
    }


def read_examples(data: bytes) -> list[list[dict]]:
    """Parse an already-validated file into normalized message lists."""
    return [_parse_line(raw) for raw in data.decode("utf-8").splitlines() if raw.strip()]
