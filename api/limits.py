"""Raw ASGI middleware run before routing: request bodies are capped while they are read (an upload over the
limit is answered 413 in OpenAI's envelope as soon as it is known), and NUL characters in the path or query
are refused with 400 before they can reach a database."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability import logs

MULTIPART_OVERHEAD = 1 << 20


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parsing passes it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes.")


class BodyLimit:
    def __init__(self, app: ASGIApp, upload_limit: int, json_limit: int = 16 << 20) -> None:
        self.app, self.upload_limit, self.json_limit = app, upload_limit, json_limit

    def _limit(self, scope: Scope) -> int:
        return self.upload_limit + MULTIPART_OVERHEAD if scope["path"].rstrip("/") == "/v1/files" else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (param := _nul_param(scope)) is not None:
            await send_error(send, 400, f"{param} must not contain NUL characters", param or None, "invalid_value")
            return
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit, seen, started = self._limit(scope), 0, False
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _reject(send, limit)


def _nul_param(scope: Scope) -> str | None:
    """The query parameter (or "path") whose value holds a NUL character, if any."""
    if "\x00" in scope.get("path", ""):
        return "path"
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return str(key).replace("\x00", "")
    return None


async def _reject(send: Send, limit: int) -> None:
    await send_error(send, 413, f"Request body exceeds {limit} bytes.", "file", "file_too_large")


async def send_error(
    send: Send,
    status: int,
    message: str,
    param: str | None,
    code: str | None,
    type_: str = "invalid_request_error",
    retry_after_s: int | None = None,
) -> None:
    """OpenAI's error envelope, sent straight from middleware; the connection is closed after it (a request
    body left unread is never read)."""
    body: dict[str, Any] = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    if rid := logs.current().get("request_id"):
        body["error"]["request_id"] = rid
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
