"""Deliveries: the receipt's data beside its platform id (what editing or deleting needs).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Deliveries sent before this revision keep their platform id and have no data: NULL.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("receipt_data", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("receipt_data")
