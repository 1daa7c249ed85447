"""Approval cards in Teams: where each announcement's card is, and jobs about an announcement.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_cards",
        sa.Column("announcement_id", sa.Integer, nullable=False),
        sa.Column("revision", sa.Integer),
        sa.Column("service_url", sa.Text),
        sa.Column("conversation_id", sa.Text),
        sa.Column("activity_id", sa.Text),
        sa.Column("digest", sa.String(64)),
        sa.Column("told_author", sa.String(40)),
        sa.Column("busy_job", sa.Integer),
        sa.Column("busy_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name="fk_approval_cards_announcement_id",
        ),
        sa.PrimaryKeyConstraint("announcement_id", name="pk_approval_cards"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("announcement_id", sa.Integer))
        batch.create_foreign_key(
            "fk_jobs_announcement_id", "announcements", ["announcement_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_announcement_id", type_="foreignkey")
        batch.drop_column("announcement_id")
    op.drop_table("approval_cards")
