"""Server-Sent Events for a job's events: one shared poller per API process (one query for the events and one
for the statuses of every job being streamed, per tick, off the event loop, holding no pooled connection
between ticks), heartbeats, a per-tenant cap on open streams, resumption after an event id, and streams that
end at once when the server shuts down."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import FrameType

from api.schemas.jobs import EventObject
from core.config import get_settings
from core.db import session_scope
from core.errors import RateLimited
from core.events import service as events
from core.jobs import service as svc
from core.observability.metrics import SSE_OPEN
from core.tenants import service as tenants

log = logging.getLogger("keel.api")
Found = dict[str, tuple[list[tuple[int, str]], str | None]]  # job id -> ([(seq, SSE chunk)], status)


def _poll(cursors: dict[str, int], key_ids: set[str]) -> tuple[Found, set[str]]:
    """One short unit of work for every streamed job: statuses first, then events, so a status read as final
    comes with every event written before it (a job's final event commits with its final status); and which
    of the streams' API keys are still active (a stream whose key was revoked is ended)."""
    with session_scope() as s:
        active = tenants.active_key_ids(s, key_ids)
        statuses = svc.job_statuses(s, list(cursors))
        new = events.since_each(s, cursors)
        return {
            job_id: ([(e.seq, f"id: {e.id}\ndata: {EventObject.of(e).model_dump_json()}\n\n") for e in evs],
                     statuses.get(job_id))
            for job_id, evs in new.items()
        }, active  # fmt: skip


REVOKED = "revoked"  # in place of a final status: the stream's API key was revoked


@dataclass(eq=False)
class _Sub:
    job_id: str
    seq: int
    key_id: str
    inbox: asyncio.Queue[tuple[list[str], str | None]] = field(default_factory=asyncio.Queue)


class _Hub:
    """The open streams of one event loop and their single poller task (running while any stream is open)."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self.poll_s = poll_s
        self.subs: set[_Sub] = set()
        self.task: asyncio.Task[None] | None = None

    def join(self, job_id: str, seq: int, key_id: str) -> _Sub:
        sub = _Sub(job_id, seq, key_id)
        self.subs.add(sub)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        return sub

    def leave(self, sub: _Sub) -> None:
        self.subs.discard(sub)

    async def tick(self) -> None:
        """One poll for every subscriber: new events (each from its own cursor) and, once the job is over and
        nothing is left to send, its final status."""
        subs = list(self.subs)
        cursors: dict[str, int] = {}
        for sub in subs:
            cursors[sub.job_id] = min(cursors.get(sub.job_id, sub.seq), sub.seq)
        found, active = await asyncio.to_thread(_poll, cursors, {sub.key_id for sub in subs})
        for sub in subs:
            if sub.key_id not in active:
                sub.inbox.put_nowait(([], REVOKED))
                continue
            evs, status = found.get(sub.job_id, ([], None))
            chunks = [chunk for seq, chunk in evs if seq > sub.seq]
            sub.seq = max([sub.seq] + [seq for seq, _ in evs])
            final = status if svc.is_terminal(status) and not chunks else None
            if chunks or final:
                sub.inbox.put_nowait((chunks, final))

    async def _run(self) -> None:
        while self.subs:
            try:
                await self.tick()
            except Exception:  # a database blip: the streams stay open and the next tick retries
                log.exception("event stream poll failed")
            await asyncio.sleep(self.poll_s)


_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()


def hub() -> _Hub:
    loop = asyncio.get_running_loop()
    if loop not in _HUBS:
        _HUBS[loop] = _Hub()
    return _HUBS[loop]


class _StreamSlots:
    """Open SSE streams per tenant in this API process; over the cap a new stream is refused (429)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self._lock = threading.Lock()  # taken in request threads, given back on the event loop

    def take(self, tenant_id: str) -> None:
        cap = get_settings().max_streams_per_tenant
        with self._lock:
            if self.open.get(tenant_id, 0) >= cap:
                raise RateLimited(
                    f"At most {cap} event streams may be open per organization; close one first.",
                    retry_after_s=5,
                    code="too_many_streams",
                )
            self.open[tenant_id] = self.open.get(tenant_id, 0) + 1
        SSE_OPEN.inc()

    def give(self, tenant_id: str) -> None:
        with self._lock:
            left = self.open.get(tenant_id, 0) - 1
            if left > 0:
                self.open[tenant_id] = left
            else:
                self.open.pop(tenant_id, None)
        SSE_OPEN.dec()


STREAMS = _StreamSlots()

# Set when this server begins to shut down: open streams end within a poll period (a clean end of the
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


_REVOKED_ERROR = {
    "error": {
        "message": "The API key of this stream was revoked.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


async def event_stream(
    job_id: str, tenant_id: str, key_id: str, seq: int = 0, heartbeat_s: float = 15.0
) -> AsyncIterator[str]:
    """Server-Sent Events: every event after sequence number ``seq`` in order, then `event: done` once the job
    is terminal. A comment line every ``heartbeat_s`` keeps proxies from closing an idle stream; a
    shutting-down server ends the stream, and so does the revocation of the API key that opened it."""
    poller = hub()
    sub, quiet_since = poller.join(job_id, seq, key_id), asyncio.get_running_loop().time()
    try:
        while not CLOSING.is_set():
            try:
                chunks, final = await asyncio.wait_for(sub.inbox.get(), timeout=poller.poll_s)
            except TimeoutError:
                if asyncio.get_running_loop().time() - quiet_since >= heartbeat_s:
                    quiet_since = asyncio.get_running_loop().time()
                    yield ": keep-alive\n\n"
                continue
            quiet_since = asyncio.get_running_loop().time()
            for chunk in chunks:
                yield chunk
            if final == REVOKED:
                yield f"event: error\ndata: {json.dumps(_REVOKED_ERROR)}\n\n"
                return
            if final:
                yield f"event: done\ndata: {json.dumps({'status': final})}\n\n"
                return
        yield RECONNECT
    finally:
        poller.leave(sub)
        STREAMS.give(tenant_id)
