"""tenants.allow_unrealigned: an operator's grant to release adapters without realignment

Revision ID: 0004_unrealigned_policy
Revises: 0003
Create Date: 2026-12-07 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_unrealigned_policy"
down_revision = "0004_job_observed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("allow_unrealigned", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allow_unrealigned")
