"""Job statuses (OpenAI's values), pipeline stages, and the one table of allowed status transitions.

OpenAI's status enum also has ``validating_files``; Keel validates files at upload and at job creation, before
the row exists, so a job starts ``queued`` and never holds that status. The wire stays compatible: a client
that knows OpenAI's enum reads every status Keel sends."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"


class Stage(StrEnum):
    TRAINING = "training"
    REALIGNING = "realigning"
    EVALUATING = "evaluating"
    EXPORTING = "exporting"


INITIAL = JobStatus.QUEUED
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED})
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PAUSED}),
    # running -> queued: the lease expired (worker lost) or the worker shut down; it resumes from a checkpoint
    JobStatus.RUNNING: frozenset(
        {JobStatus.QUEUED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PAUSED}
    ),
    # paused: the worker stops at its next step (checkpoints kept); resume queues it again
    JobStatus.PAUSED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def sources(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which ``target`` may be reached (used in conditional UPDATEs)."""
    return frozenset(s for s, allowed in TRANSITIONS.items() if target in allowed)
