"""Line-by-line validation of fine-tuning JSONL files, streamed (no whole-file copy in memory), with token
statistics when a tokenizer is given.

Every bad line is reported with its 1-based line number, a machine-readable code and a reason. A line
longer than the per-line cap is rejected before any JSON parsing. Parsing and token counting are
tuning.rows' (the code the trainer uses), so validation and training agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, BinaryIO

from tuning.rows import RowError, count_tokens, parse_line

MAX_REPORTED_ERRORS = 100
MAX_LINE_BYTES = 4 * 1024 * 1024


@lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def iter_lines(fh: BinaryIO, max_line: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw line) for every line; raw is None for a line over ``max_line`` bytes, whose rest
    is skipped without being held in memory."""
    max_line = max_line or MAX_LINE_BYTES
    lineno = 0
    while True:
        raw = fh.readline(max_line + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield lineno, None
        else:
            yield lineno, raw


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


def _check_line(raw: bytes | None, tokenizer: Any, context_length: int | None, counts: list[int]) -> None:
    if raw is None:
        raise RowError("line_too_long", f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RowError("invalid_encoding", "line is not UTF-8") from exc
    try:
        messages = parse_line(text)
    except RecursionError as exc:
        raise RowError("invalid_json", "line is nested too deeply") from exc
    if tokenizer is not None:
        n = count_tokens(tokenizer, messages)
        if context_length and n > context_length:
            raise RowError("too_long", f"example has {n} tokens; the model's context is {context_length}")
        counts.append(n)


def validate_stream(fh: BinaryIO, tokenizer: Any = None, context_length: int | None = None) -> dict[str, Any]:
    """Return {"valid", "n_lines", "n_examples", "errors": [{line, code, message}], "tokens": stats}."""
    errors: list[dict[str, Any]] = []
    counts: list[int] = []
    n_lines = n_examples = 0
    for lineno, raw in iter_lines(fh):
        n_lines = lineno
        if raw is not None and not raw.strip():
            continue
        try:
            _check_line(raw, tokenizer, context_length, counts)
        except RowError as exc:
            errors.append({"line": lineno, "code": exc.code, "message": str(exc)})
            continue
        n_examples += 1
    return _report(n_lines, n_examples, errors, counts)


def _report(n_lines: int, n_examples: int, errors: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    if n_lines and not n_examples and not errors:
        errors.append({"line": None, "code": "empty_file", "message": "file has no examples"})
    elif not n_lines:
        errors.append({"line": None, "code": "empty_file", "message": "file is empty"})
    return {
        "valid": not errors,
        "n_lines": n_lines,
        "n_examples": n_examples,
        "n_errors": len(errors),
        "errors": errors[:MAX_REPORTED_ERRORS],
        "tokens": _token_stats(counts),
    }
