"""Raw ASGI middleware that authenticates every ``/v1`` request from its headers alone, before any body is
read: a missing, unknown or revoked key is answered 401 (with ``Connection: close``) while an upload's bytes
are still unread, so an unauthenticated client can make the API neither spool a file nor hold a JSON body.

Failed authentications are also rate-limited per client IP (per API process): once an address has spent its
bucket, its requests without a key are answered 429 at once, and those with a key that does not authenticate
are answered 429 instead of 401. A valid key is never refused for its address's failures (clients behind one
NAT, or on loopback, share an address). The principal found is left in ``scope["state"]`` for
:func:`api.deps.get_principal`, which does not authenticate again.
"""

from __future__ import annotations

import contextlib

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import send_error
from core.config import get_settings
from core.db import session_scope
from core.errors import AuthenticationError, RateLimited
from core.tenants.limits import TokenBuckets
from core.tenants.service import Principal, authenticate

PRINCIPAL = "keel.principal"
UNAUTHENTICATED = TokenBuckets(lambda: (get_settings().unauth_rate_limit_rps, get_settings().unauth_rate_limit_burst))


def _authenticate(authorization: str | None) -> Principal:
    with session_scope() as session:
        return authenticate(session, authorization)


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AuthGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        ip = _client_ip(scope)
        header = dict(scope.get("headers", [])).get(b"authorization")
        wait = UNAUTHENTICATED.exhausted(ip)
        if wait is not None and header is None:
            await _too_many(send, wait)
            return
        try:
            principal = await anyio.to_thread.run_sync(_authenticate, header.decode("latin-1") if header else None)
        except AuthenticationError as exc:
            if wait is not None:
                await _too_many(send, wait)
                return
            with contextlib.suppress(RateLimited):  # the next failure from this address is the one refused
                UNAUTHENTICATED.take(ip)
            await send_error(send, 401, exc.message, None, exc.code, exc.type)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, receive, send)


async def _too_many(send: Send, wait: int) -> None:
    msg = "Too many unauthenticated requests from this address."
    await send_error(send, 429, msg, None, "rate_limit_exceeded", "rate_limit_error", wait)
