"""sandbox provider state

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-01

The sandbox provider kept its domains in one process's memory, so a second `serve` process
or a separate `gql-gateway worker` saw a different sandbox. They live in this table now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("verify_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_sandbox_domains")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_domains")
