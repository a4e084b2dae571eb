"""jobs: workers lost while running the job, and the worker's last memory sample

Revision ID: 0004_worker_losses
Revises: 0004h_hostile_limits
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_worker_losses"
down_revision = "0004h_hostile_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lost_workers", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("worker_memory", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("worker_memory")
        batch.drop_column("lost_workers")
