"""safety mask leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("safety_masks") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("safety_masks") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
