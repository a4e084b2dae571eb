"""Structured logs: every line of the API and the workers carries request id, tenant id, job id and stage.

The ids live in one context variable holding a mutable dict: the HTTP middleware (or a Celery task) sets a
fresh dict, and code running in a worker thread of that request (FastAPI runs sync dependencies in a copied
context) updates the same dict, so the ids it binds show on the request's later lines too.

``KEEL_LOG_FORMAT``: ``json`` (one object per line), ``text`` (readable), ``auto`` (text in embedded mode,
where a person reads the console, json in production).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("request_id", "tenant_id", "job_id", "stage")
_CTX: ContextVar[dict[str, str] | None] = ContextVar("keel_log_ctx", default=None)
_MARK = "_keel_handler"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def current() -> dict[str, str]:
    return dict(_CTX.get() or {})


def bind(**values: str | None) -> None:
    """Add ids to the current context (a request's or a task's); None values are ignored."""
    ctx = _CTX.get()
    if ctx is None:
        ctx = {}
        _CTX.set(ctx)
    ctx.update({k: str(v) for k, v in values.items() if v is not None})


@contextmanager
def scope(**values: str | None) -> Iterator[dict[str, str]]:
    """A fresh context for one request or task; the previous one is restored afterwards."""
    ctx = {k: str(v) for k, v in values.items() if v is not None}
    token = _CTX.set(ctx)
    try:
        yield ctx
    finally:
        _CTX.reset(token)


class ContextFilter(logging.Filter):
    """Copies the context's ids onto each record (None where unknown), so both formats can show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _CTX.get() or {}
        for key in FIELDS:
            if not hasattr(record, key) or getattr(record, key) is None:
                setattr(record, key, ctx.get(key))
        return True


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", *FIELDS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: getattr(record, k, None) for k in FIELDS})
        out.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Readable console lines; the ids that are known follow the message in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None))
        return f"{line} [{ids}]" if ids else line


def use_json(setting: str, embedded: bool) -> bool:
    return setting == "json" or (setting == "auto" and not embedded)


def configure(json_lines: bool, level: int = logging.INFO) -> None:
    """Install Keel's handler on the root logger (replacing an earlier one of ours, leaving others alone) and
    route uvicorn's and Celery's loggers through it. Idempotent."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # A line per request suits a log pipeline, not a person's console (`keel serve --access-log` shows
    # uvicorn's): in text mode only failing requests (5xx, logged as warnings) are written.
    logging.getLogger("keel.http").setLevel(logging.NOTSET if json_lines else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task", "celery.worker"):
        lg = logging.getLogger(name)
        if lg.handlers:  # one with no handler is either propagating already or switched off (--no-access-log)
            lg.handlers.clear()
            lg.propagate = True


def configure_from_settings() -> None:
    from core.config import get_settings

    s = get_settings()
    configure(use_json(s.log_format, s.embedded))
