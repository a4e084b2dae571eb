"""OpenAI fine-tuning jobs API plus Keel's adapter download and safety report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import PrincipalDep, SessionDep
from api.pools import in_validation_pool
from api.schemas.common import ERRORS, IdPage, Page, id_page, page
from api.schemas.jobs import CheckpointObject, DryRun, EventObject, JobObject, SafetyReportObject
from api.streams import STREAMS, event_stream
from core.errors import InvalidRequest
from core.events import service as events
from core.jobs import outputs
from core.jobs import service as svc
from core.jobs.models import Job
from core.jobs.schemas import JobCreate
from core.storage import get_store

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"], responses=ERRORS)


def _objs(session: SessionDep, jobs: list[Job]) -> list[JobObject]:
    """Job objects with a constant number of queries: one for queue positions, one for result files."""
    positions, files = svc.queue_positions(session, jobs), outputs.result_files(session, jobs)
    return [JobObject.of(j, positions.get(j.id), svc.public_lora(j.lora), files.get(j.id, [])) for j in jobs]


def _obj(session: SessionDep, job: Job) -> JobObject:
    return _objs(session, [job])[0]


def _create(session: SessionDep, tenant_id: str, body: JobCreate, idempotency_key: str | None) -> JobObject | DryRun:
    if body.dry_run:
        return DryRun(**svc.dry_run(session, tenant_id, body))
    return _obj(session, svc.create_job(session, tenant_id, body, idempotency_key))


@router.post("")
async def create(
    body: JobCreate,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobObject | DryRun:
    """Runs in the validation pool (api.pools): a file's tokens may have to be counted for the model."""
    return await in_validation_pool(_create, session, principal.tenant_id, body, idempotency_key)


_FILTER_KEY = re.compile(r"[^\"\\\x00-\x1f]{1,64}")  # a JSON path quotes the key: no quote, backslash, control


def _metadata_filter(request: Request) -> dict[str, str] | None:
    meta: dict[str, str] = {}
    for k, v in request.query_params.items():
        if k.startswith("metadata"):
            if not (k.startswith("metadata[") and k.endswith("]") and len(k) > len("metadata[]")):
                raise InvalidRequest(f"malformed filter {k!r}; use metadata[key]=value", param=k)
            key = k[len("metadata[") : -1]
            if not _FILTER_KEY.fullmatch(key):
                raise InvalidRequest(f"metadata filter key {key[:64]!r} has characters a filter cannot use", param=k)
            meta[key] = v
    return meta or None


@router.get("")
def list_jobs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[JobObject]:
    rows, more = svc.list_jobs(session, principal.tenant_id, after, limit, _metadata_filter(request))
    return page(_objs(session, rows), more)


@router.get("/{job_id}")
def retrieve(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobObject:
    return _obj(session, svc.get_job(session, principal.tenant_id, job_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobObject:
    return _obj(session, svc.cancel_job(session, principal.tenant_id, job_id))


@router.post("/{job_id}/pause")
def pause(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobObject:
    return _obj(session, svc.pause_job(session, principal.tenant_id, job_id))


@router.post("/{job_id}/resume")
def resume(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobObject:
    return _obj(session, svc.resume_job(session, principal.tenant_id, job_id))


@router.get(
    "/{job_id}/events",
    response_model=Page[EventObject],
    responses={200: {"content": {"text/event-stream": {}}, "description": "A page of events, or with stream=true SSE"}},
)
def list_events(
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(description="a page: events older than this; stream: newer")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    stream: bool = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=200)] = None,
) -> Page[EventObject] | StreamingResponse:
    svc.get_job(session, principal.tenant_id, job_id)
    if stream:  # resumes after `after` or the SSE Last-Event-ID header (a reconnecting client)
        start = events.resume_point(session, job_id, after or last_event_id)
        STREAMS.take(principal.tenant_id)
        return StreamingResponse(
            event_stream(job_id, principal.tenant_id, principal.key_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    rows, more = events.page(session, job_id, after, limit)
    return page([EventObject.of(e) for e in rows], more)


@router.get("/{job_id}/checkpoints")
def list_checkpoints(
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> IdPage[CheckpointObject]:
    job = svc.get_job(session, principal.tenant_id, job_id)
    rows, more = events.checkpoints(session, job_id, after, limit)
    name = job.fine_tuned_model or svc.model_name(job)
    return id_page([CheckpointObject.of(c, name) for c in rows], more, [c.id for c in rows])


def _chunks(key: str) -> Iterator[bytes]:
    with get_store().open(key) as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


@router.get(
    "/{job_id}/adapter",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "PEFT adapter + manifest.json"}},
)
def adapter(
    job_id: str, session: SessionDep, principal: PrincipalDep, variant: Literal["realigned", "raw"] = "realigned"
) -> StreamingResponse:
    job = svc.get_job(session, principal.tenant_id, job_id)
    art = outputs.adapter_artifact(session, job, variant, principal)
    headers = {
        "Content-Disposition": f'attachment; filename="{job.id}-{variant}-adapter.zip"',
        "Content-Length": str(art.bytes),
    }
    return StreamingResponse(_chunks(art.storage_key), media_type="application/zip", headers=headers)


@router.get(
    "/{job_id}/safety_report", response_model=SafetyReportObject, responses={200: {"content": {"image/png": {}}}}
)
def safety_report(
    job_id: str, session: SessionDep, principal: PrincipalDep, format: Literal["json", "png"] = "json"
) -> SafetyReportObject | StreamingResponse:
    job = svc.get_job(session, principal.tenant_id, job_id)
    if format == "png":
        return StreamingResponse(_chunks(outputs.report_plot(session, job).storage_key), media_type="image/png")
    if format != "json":
        raise InvalidRequest("format must be 'json' or 'png'.", param="format")
    return SafetyReportObject.of(outputs.report_for(session, job))
