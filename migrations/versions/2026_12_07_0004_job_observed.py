"""jobs: what a job's attempts measured moves out of its hyperparameters; total_steps dropped

``observed_tokens_per_s``, ``train_wall_s`` and ``realign_wall_s`` were stored in ``jobs.hyperparameters``,
so a retried attempt's manifest carried the previous attempt's measurements as if they were requested
settings. They move to ``jobs.observed``. ``jobs.total_steps`` was written at creation and never read.

Revision ID: 0004_job_observed
Revises: 0003
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_job_observed"
down_revision = "0003"
branch_labels = None
depends_on = None

OBSERVED = ("observed_tokens_per_s", "train_wall_s", "realign_wall_s")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
jobs = sa.table("jobs", sa.column("id", sa.String()), sa.column("hyperparameters", JSON), sa.column("observed", JSON))


def _move(rows: Any, into_observed: bool) -> None:
    for job_id, hp, seen in rows:
        hp, seen = dict(hp or {}), dict(seen or {})
        src, dst = (hp, seen) if into_observed else (seen, hp)
        moved = {k: src.pop(k) for k in OBSERVED if k in src}
        if moved:
            dst.update(moved)
            op.get_bind().execute(sa.update(jobs).where(jobs.c.id == job_id).values(hyperparameters=hp, observed=seen))


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("observed", JSON, nullable=False, server_default="{}"))
        batch.drop_column("total_steps")
    rows = op.get_bind().execute(sa.select(jobs.c.id, jobs.c.hyperparameters, jobs.c.observed)).all()
    _move(rows, into_observed=True)


def downgrade() -> None:
    rows = op.get_bind().execute(sa.select(jobs.c.id, jobs.c.hyperparameters, jobs.c.observed)).all()
    _move(rows, into_observed=False)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("total_steps", sa.Integer(), nullable=True))
        batch.drop_column("observed")
