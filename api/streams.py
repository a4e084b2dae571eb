"""Server-Sent Events for a job's events: short DB sessions off the event loop, heartbeats, a per-tenant cap
on open streams, resumption after an event id, and streams that end at once when the server shuts down."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator
from types import FrameType

from api.schemas.jobs import EventObject
from core.config import get_settings
from core.db import session_scope
from core.errors import RateLimited
from core.events import service as events
from core.jobs import service as svc


def _poll(job_id: str, seq: int) -> tuple[list[str], int, str | None]:
    """One short unit of work: new events as SSE chunks, the last seq, and the status once it is final."""
    with session_scope() as s:
        new = events.since(s, job_id, seq)
        status = svc.job_status(s, job_id)
        chunks = [f"id: {e.id}\ndata: {EventObject.of(e).model_dump_json()}\n\n" for e in new]
        final = status if svc.is_terminal(status) and not new else None
        return chunks, (new[-1].seq if new else seq), final


class _StreamSlots:
    """Open SSE streams per tenant in this API process; over the cap a new stream is refused (429)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    def take(self, tenant_id: str) -> None:
        cap = get_settings().max_streams_per_tenant
        if self.open.get(tenant_id, 0) >= cap:
            raise RateLimited(
                f"At most {cap} event streams may be open per organization; close one first.",
                retry_after_s=5,
                code="too_many_streams",
            )
        self.open[tenant_id] = self.open.get(tenant_id, 0) + 1

    def give(self, tenant_id: str) -> None:
        self.open[tenant_id] = max(0, self.open.get(tenant_id, 0) - 1)


STREAMS = _StreamSlots()

# Set when this server begins to shut down: open streams end at their next poll (a clean end of the
# response) so the server's graceful shutdown does not wait on them; clients reconnect with Last-Event-ID.
CLOSING = threading.Event()
RECONNECT = ": server shutting down; reconnect with Last-Event-ID or after=<last event id>\nretry: 1000\n\n"


def close_streams_on_shutdown() -> None:
    """Chain onto the server's SIGTERM/SIGINT handlers (uvicorn installs them before the app starts) so the
    streams learn of the shutdown first. Only the main thread can; elsewhere (a test client) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        server_handler = signal.getsignal(signum)

        def handler(sig: int, frame: FrameType | None, server_handler: object = server_handler) -> None:
            CLOSING.set()
            if callable(server_handler):
                server_handler(sig, frame)

        signal.signal(signum, handler)


async def event_stream(
    job_id: str, tenant_id: str, seq: int = 0, poll_s: float = 0.5, heartbeat_s: float = 15.0
) -> AsyncIterator[str]:
    """Server-Sent Events: every event after sequence number ``seq`` in order, then `event: done` once the job
    is terminal. No pooled connection is held between polls; each poll runs off the event loop; a comment line
    every ``heartbeat_s`` keeps proxies from closing an idle stream; a shutting-down server ends the stream."""
    quiet_since = asyncio.get_running_loop().time()
    try:
        while True:
            if CLOSING.is_set():
                yield RECONNECT
                return
            chunks, seq, final = await asyncio.to_thread(_poll, job_id, seq)
            for chunk in chunks:
                yield chunk
            now = asyncio.get_running_loop().time()
            if chunks:
                quiet_since = now
            elif now - quiet_since >= heartbeat_s:
                quiet_since = now
                yield ": keep-alive\n\n"
            if final:
                yield f"event: done\ndata: {json.dumps({'status': final})}\n\n"
                return
            await asyncio.sleep(poll_s)
    finally:
        STREAMS.give(tenant_id)
