"""Recipient lists for SMS: the lists, their members (E.164 numbers) and the opt-outs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recipient_lists",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("organisation", sa.String(64)),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recipient_lists"),
        sa.UniqueConstraint("name", name="uq_recipient_lists_name"),
    )
    op.create_table(
        "list_members",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("list_id", sa.Integer, nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_list_members"),
        sa.ForeignKeyConstraint(
            ["list_id"], ["recipient_lists.id"], name="fk_list_members_list_id"
        ),
        sa.UniqueConstraint("list_id", "number", name="uq_list_members_list_id_number"),
    )
    op.create_table(
        "opt_outs",
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_opt_outs"),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_table("list_members")
    op.drop_table("recipient_lists")
