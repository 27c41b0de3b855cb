"""zones connected to accounts, and one holder per name

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01

Before this revision several accounts could hold rows of one name. The upgrade keeps one holder
per name: the account that verified it, else the one that added it first (oldest `created_at`,
then lowest id). Every other row of the name steps aside exactly as after a claim: `failed`,
`status_reason = 'claimed_by_another_account'`, `released_at` set; the rows are kept, so their
owners see what happened.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RELEASE_DUPLICATES = """
UPDATE email_domains AS d
SET status = 'failed',
    status_reason = 'claimed_by_another_account',
    released_at = now(),
    updated_at = greatest(clock_timestamp(), d.updated_at + interval '1 microsecond')
FROM (
    SELECT id, row_number() OVER (
        PARTITION BY domain
        ORDER BY (status = 'verified') DESC, created_at, id
    ) AS rank
    FROM email_domains
) AS ranked
WHERE d.id = ranked.id AND ranked.rank > 1
"""


def upgrade() -> None:
    op.add_column(
        "email_domains", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(_RELEASE_DUPLICATES)
    op.create_index(
        "uq_email_domains_holder",
        "email_domains",
        ["domain"],
        unique=True,
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "cloudflare_tokens",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_cloudflare_tokens")),
    )
    op.create_table(
        "zone_bindings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("zone_name", sa.String(length=253), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zone_bindings")),
        sa.UniqueConstraint("zone_id", "user_id", name=op.f("uq_zone_bindings_zone_id_user_id")),
    )
    op.create_index(op.f("ix_zone_bindings_user_id"), "zone_bindings", ["user_id"])
    op.create_table(
        "dns_publications",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.String(length=64), nullable=False),
        sa.Column("zone_name", sa.String(length=253), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dns_publications")),
        sa.UniqueConstraint(
            "domain",
            "user_id",
            "zone_id",
            name=op.f("uq_dns_publications_domain_user_id_zone_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("dns_publications")
    op.drop_index(op.f("ix_zone_bindings_user_id"), table_name="zone_bindings")
    op.drop_table("zone_bindings")
    op.drop_table("cloudflare_tokens")
    op.drop_index(
        "uq_email_domains_holder",
        table_name="email_domains",
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.drop_column("email_domains", "released_at")
