"""Retention, run by the janitor: the scratch tree of finished jobs (checkpoints with optimizer state,
per-attempt bundles, realigned adapters), mask copies no ready version names any more, artifacts past
``KEEL_ARTIFACT_TTL_DAYS`` and upload-ledger rows older than the daily quota's window.

Only what a row says is finished goes: a scratch directory whose job row is missing is left alone (the
store janitor's rule for what it cannot account for), and nothing younger than the grace age is touched.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.base_models.models import SafetyMask
from core.base_models.states import MaskStatus
from core.config import get_settings
from core.files import repository as files_repo
from core.files.models import File
from core.files.states import Purpose
from core.jobs.models import Job
from core.jobs.states import TERMINAL
from core.results.models import Artifact

log = logging.getLogger("keel.janitor")
DAY = 86_400


def _finished_jobs(session: Session, job_ids: list[str], before: float) -> set[str]:
    q = select(Job.id).where(Job.id.in_(job_ids), Job.status.in_(list(TERMINAL)), Job.finished_at < before)
    return set(session.scalars(q))


def _old(path: Path, before: float) -> bool:
    try:
        return path.stat().st_mtime < before
    except FileNotFoundError:
        return False


def sweep_scratch(session: Session, grace_s: float, t: float | None = None) -> list[Path]:
    """Remove finished jobs' scratch directories and mask copies no ready version names; returns them."""
    root, before = get_settings().scratch_dir, (time.time() if t is None else t) - grace_s
    if not root.is_dir():
        return []
    jobs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("ftjob-")]
    done = _finished_jobs(session, [p.name for p in jobs], before) if jobs else set()
    gone = [p for p in jobs if p.name in done]
    cache = root / "mask-cache"
    if cache.is_dir():
        ready = session.scalars(select(SafetyMask.storage_key).where(SafetyMask.status == MaskStatus.READY))
        keep = {k.replace("/", "_") for k in ready if k}
        gone += [p for p in cache.iterdir() if p.name not in keep and _old(p, before)]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    if gone:
        log.info("janitor removed %d scratch director(ies), e.g. %s", len(gone), gone[0])
    return gone


def expire_artifacts(session: Session, ttl_days: float, t: float | None = None) -> list[str]:
    """Drop the artifact rows (and published result files) of jobs finished more than ``ttl_days`` ago; their
    bytes become orphans the store janitor removes. Returns the jobs' ids."""
    if ttl_days <= 0:
        return []
    before = (time.time() if t is None else t) - ttl_days * DAY
    q = (
        select(Artifact.job_id, Artifact.storage_key)
        .join(Job, Job.id == Artifact.job_id)
        .where(Job.status.in_(list(TERMINAL)), Job.finished_at < before)
        .limit(1000)
    )
    rows = session.execute(q).all()
    if not rows:
        return []
    keys = [key for _, key in rows]
    session.execute(delete(File).where(File.storage_key.in_(keys), File.purpose == Purpose.FINE_TUNE_RESULTS))
    session.execute(delete(Artifact).where(Artifact.storage_key.in_(keys)))
    return sorted({job_id for job_id, _ in rows})


def prune_upload_ledger(session: Session, t: float | None = None) -> int:
    return files_repo.prune_ledger(session, int((time.time() if t is None else t) - 2 * DAY))
