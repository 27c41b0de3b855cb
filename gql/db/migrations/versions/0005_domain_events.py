"""domain events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Every change of a domain, stored with the change: the history behind `statusHistory` and the
source live subscriptions read from.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domain_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("domain_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("domain", JSONB(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('created', 'status_changed', 'records_changed', 'deleted')",
            name=op.f("ck_domain_events_kind"),
        ),
        sa.CheckConstraint(
            "cause IN ('create', 'override', 'verify', 'poll', 'sync', 'poller', 'timeout', "
            "'claim', 'delete')",
            name=op.f("ck_domain_events_cause"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_events")),
    )
    op.create_index(
        op.f("ix_domain_events_domain_id_id"), "domain_events", ["domain_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_domain_events_user_id_id"), "domain_events", ["user_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_domain_events_created_at"), "domain_events", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("domain_events")
