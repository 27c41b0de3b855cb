"""domain state machine: a row version for compare-and-set, and the running check's job

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "email_domains",
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("email_domains", sa.Column("check_job_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_email_domains_verifying",
        "email_domains",
        ["verification_started_at"],
        postgresql_where=sa.text("status = 'verifying'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_email_domains_verifying",
        table_name="email_domains",
        postgresql_where=sa.text("status = 'verifying'"),
    )
    op.drop_column("email_domains", "check_job_id")
    op.drop_column("email_domains", "version")
