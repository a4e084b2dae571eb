"""OpenAI fine-tuning jobs API plus Keel's adapter download and safety report."""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from api.deps import PrincipalDep, SessionDep, page
from core import events
from core import jobs as svc
from core import results
from core.db import session_scope
from core.queue import RUN_JOB, send
from core.schemas import JobCreate

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
log = logging.getLogger("keel.api")


def _dispatch(job_id: str) -> None:
    try:
        send(RUN_JOB, job_id)
    except Exception:  # the reaper re-sends queued jobs nobody claimed
        log.exception("could not reach the broker for %s; the reaper will retry", job_id)


@router.post("")
def create(body: JobCreate, session: SessionDep, principal: PrincipalDep,
           idempotency_key: Annotated[str | None, Header()] = None) -> dict:
    job, created = svc.create_job(session, principal.tenant_id, body, idempotency_key)
    if isinstance(job, dict):
        return job
    session.commit()
    if created:
        _dispatch(job.id)
    return svc.job_object(session, job)


@router.get("")
def list_jobs(request: Request, session: SessionDep, principal: PrincipalDep, after: str | None = None,
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
    meta = {k[len("metadata["):-1]: v for k, v in request.query_params.items()
            if k.startswith("metadata[") and k.endswith("]")}
    rows, more = svc.list_jobs(session, principal.tenant_id, after, limit, meta or None)
    return page([svc.job_object(session, j) for j in rows], more)


@router.get("/{job_id}")
def retrieve(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    return svc.job_object(session, svc.get_job(session, principal.tenant_id, job_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    return svc.job_object(session, svc.cancel_job(session, principal.tenant_id, job_id))


@router.get("/{job_id}/events")
def list_events(job_id: str, session: SessionDep, principal: PrincipalDep, after: str | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 20, stream: bool = False):  # noqa: ANN201
    svc.get_job(session, principal.tenant_id, job_id)
    if stream:
        return StreamingResponse(_event_stream(job_id), media_type="text/event-stream")
    rows, more = events.page(session, job_id, after, limit)
    return page([events.event_object(e) for e in rows], more)


async def _event_stream(job_id: str, poll_s: float = 0.5):  # noqa: ANN202
    """Server-Sent Events: every event in order, then `event: done` once the job is terminal."""
    seq = 0
    while True:
        with session_scope() as s:
            new = events.since(s, job_id, seq)
            status = svc.job_status(s, job_id)
            chunks = [f"id: {e.id}\ndata: {json.dumps(events.event_object(e))}\n\n" for e in new]
            seq = new[-1].seq if new else seq
        for chunk in chunks:
            yield chunk
        if status in svc.TERMINAL and not new:
            yield f"event: done\ndata: {json.dumps({'status': status})}\n\n"
            return
        await asyncio.sleep(poll_s)


@router.get("/{job_id}/checkpoints")
def list_checkpoints(job_id: str, session: SessionDep, principal: PrincipalDep, after: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    job = svc.get_job(session, principal.tenant_id, job_id)
    rows, more = events.checkpoints(session, job_id, after, limit)
    name = job.fine_tuned_model or svc.model_name(job)
    return page([events.checkpoint_object(c, name) for c in rows], more, with_ids=True)


@router.get("/{job_id}/adapter")
def adapter(job_id: str, session: SessionDep, principal: PrincipalDep, variant: str = "realigned") -> FileResponse:
    job = svc.get_job(session, principal.tenant_id, job_id)
    path = results.adapter_zip(session, job, variant, principal)
    return FileResponse(path, media_type="application/zip", filename=f"{job.id}-{variant}-adapter.zip")


@router.get("/{job_id}/safety_report")
def safety_report(job_id: str, session: SessionDep, principal: PrincipalDep, format: str = "json"):  # noqa: A002, ANN201
    job = svc.get_job(session, principal.tenant_id, job_id)
    if format == "png":
        return FileResponse(results.report_plot(session, job), media_type="image/png")
    return results.report_object(session, job)
