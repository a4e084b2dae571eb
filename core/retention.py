"""Retention, run by the janitor: the scratch tree of finished jobs (checkpoints with optimizer state,
per-attempt bundles, realigned adapters; a job created with ``keep_last_checkpoint`` keeps its newest
complete checkpoint), mask versions older than the newest ``KEEL_MASK_VERSIONS_KEPT`` ready ones, mask copies
no ready version names any more, artifacts past ``KEEL_ARTIFACT_TTL_DAYS`` and upload-ledger rows older than
the daily quota's window.

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


CHECKPOINT_STATE = "trainer_state.json"  # written last into a checkpoint dir (tuning.train.STATE): complete


def _finished_jobs(session: Session, job_ids: list[str], before: float) -> dict[str, bool]:
    """Finished jobs among ``job_ids`` -> whether the tenant asked to keep the last checkpoint."""
    q = select(Job.id, Job.keep_last_checkpoint).where(
        Job.id.in_(job_ids), Job.status.in_(list(TERMINAL)), Job.finished_at < before
    )
    return {job_id: bool(keep) for job_id, keep in session.execute(q)}


def _newest_checkpoint(job_dir: Path) -> Path | None:
    """The newest complete checkpoint of any attempt (``attempt-N/train/checkpoints/step-K``)."""
    done = [p for p in job_dir.glob("attempt-*/train/checkpoints/step-*") if (p / CHECKPOINT_STATE).exists()]
    return max(done, key=lambda p: (int(p.name.split("-")[1]), p.parts[-4]), default=None)


def _prune_job_dir(job_dir: Path, keep_last: bool) -> list[Path]:
    """What of a finished job's scratch goes: all of it, or all but the newest complete checkpoint."""
    kept = _newest_checkpoint(job_dir) if keep_last else None
    if kept is None:
        return [job_dir]
    keep = {kept, *kept.parents}
    gone: set[Path] = set()
    for path in sorted(job_dir.rglob("*"), key=lambda p: len(p.parts)):
        if path not in keep and kept not in path.parents and gone.isdisjoint(path.parents):
            gone.add(path)
    return sorted(gone)


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
    done = _finished_jobs(session, [p.name for p in jobs], before) if jobs else {}
    gone = [g for p in jobs if p.name in done for g in _prune_job_dir(p, done[p.name])]
    cache = root / "mask-cache"
    if cache.is_dir():
        ready = session.scalars(select(SafetyMask.storage_key).where(SafetyMask.status == MaskStatus.READY))
        keep = {k.replace("/", "_") for k in ready if k}
        gone += [p for p in cache.iterdir() if p.name not in keep and _old(p, before)]
    for path in gone:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if gone:
        log.info("janitor removed %d scratch director(ies), e.g. %s", len(gone), gone[0])
    return gone


def expire_masks(session: Session, keep: int, grace_s: float, t: float | None = None) -> list[str]:
    """Ready mask versions older than each base model's newest ``keep`` ready ones become ``expired``: their
    storage key is cleared (the store janitor removes the orphaned bytes), the row stays as provenance for the
    reports that name it. A version a queued, running or paused job has pinned is kept. Returns their ids."""
    before = (time.time() if t is None else t) - grace_s
    live = select(Job.mask_id).where(Job.mask_id.is_not(None), Job.status.not_in(list(TERMINAL)))
    pinned = set(session.scalars(live))
    ready = session.scalars(
        select(SafetyMask)
        .where(SafetyMask.status == MaskStatus.READY)
        .order_by(SafetyMask.base_model_id, SafetyMask.version.desc())
    )
    seen: dict[str, int] = {}
    expired: list[str] = []
    for mask in ready:
        seen[mask.base_model_id] = rank = seen.get(mask.base_model_id, 0) + 1
        if rank > keep and mask.id not in pinned and (mask.finished_at or 0) < before:
            mask.status, mask.storage_key = MaskStatus.EXPIRED, None
            expired.append(mask.id)
    if expired:
        session.flush()
        log.info("janitor expired %d mask version(s), e.g. %s", len(expired), expired[0])
    return expired


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
