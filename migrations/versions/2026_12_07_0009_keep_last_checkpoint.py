"""jobs: the tenant asked to keep the last checkpoint once the job is finished

Revision ID: 0009_keep_last_checkpoint
Revises: 0004_worker_losses
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_keep_last_checkpoint"
down_revision = "0004_worker_losses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("keep_last_checkpoint", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("keep_last_checkpoint")
