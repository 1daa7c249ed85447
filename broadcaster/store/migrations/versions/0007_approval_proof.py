"""Approval proof: how the person who decided was shown to be who they said.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("proof", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("proof")
