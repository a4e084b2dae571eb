"""Line-by-line validation of fine-tuning JSONL files, streamed (no whole-file copy in memory), with token
statistics when a tokenizer is given.

Every bad line is reported with its 1-based line number, a machine-readable code and a reason. A line
longer than the per-line cap is rejected before any JSON parsing. Parsing and token counting are
tuning.rows' (the code the trainer uses), so validation and training agree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, BinaryIO

from tuning.rows import RowError, count_tokens, iter_lines, parse_line

MAX_REPORTED_ERRORS = 100  # line errors kept on the file row; the rest are only counted (per code)
MAX_MESSAGE_CHARS = 300  # an error message (which may quote the user's content) is cut to this
MAX_LINE_BYTES = 4 * 1024 * 1024  # read at call time, so a test may lower it


@lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


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


class _Errors:
    """The first ``MAX_REPORTED_ERRORS`` line errors (messages cut to ``MAX_MESSAGE_CHARS``) and a count per
    code of all of them: a file of a million bad lines makes a report of bounded size."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []
        self.by_code: dict[str, int] = {}

    def add(self, line: int | None, code: str, message: str) -> None:
        self.by_code[code] = self.by_code.get(code, 0) + 1
        if len(self.kept) < MAX_REPORTED_ERRORS:
            cut = message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."
            self.kept.append({"line": line, "code": code, "message": cut})

    @property
    def total(self) -> int:
        return sum(self.by_code.values())


def validate_stream(fh: BinaryIO, tokenizer: Any = None, context_length: int | None = None) -> dict[str, Any]:
    """Return {"valid", "n_lines", "n_examples", "n_errors", "errors": [{line, code, message}],
    "error_counts": {code: n}, "tokens": stats}."""
    errors = _Errors()
    counts: list[int] = []
    n_lines = n_examples = 0
    for lineno, raw in iter_lines(fh, MAX_LINE_BYTES):
        n_lines = lineno
        if raw is not None and not raw.strip():
            continue
        try:
            _check_line(raw, tokenizer, context_length, counts)
        except RowError as exc:
            errors.add(lineno, exc.code, str(exc))
            continue
        n_examples += 1
    return _report(n_lines, n_examples, errors, counts)


def _report(n_lines: int, n_examples: int, errors: _Errors, counts: list[int]) -> dict[str, Any]:
    if n_lines and not n_examples and not errors.total:
        errors.add(None, "empty_file", "file has no examples")
    elif not n_lines:
        errors.add(None, "empty_file", "file is empty")
    return {
        "valid": not errors.total,
        "n_lines": n_lines,
        "n_examples": n_examples,
        "n_errors": errors.total,
        "errors": errors.kept,
        "error_counts": errors.by_code,
        "tokens": _token_stats(counts),
    }
