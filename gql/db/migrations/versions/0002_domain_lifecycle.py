"""domain lifecycle

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:01:55.828005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("email_domains", sa.Column("status_reason", sa.String(length=64), nullable=True))
    op.add_column(
        "email_domains",
        sa.Column("verification_started_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "email_domains", sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "uq_email_domains_verified_domain",
        "email_domains",
        ["domain"],
        unique=True,
        postgresql_where=sa.text("status = 'verified'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_email_domains_verified_domain",
        table_name="email_domains",
        postgresql_where=sa.text("status = 'verified'"),
    )
    op.drop_column("email_domains", "last_checked_at")
    op.drop_column("email_domains", "verification_started_at")
    op.drop_column("email_domains", "status_reason")
