"""SQLModel tables. These are storage, not API types: services convert rows explicitly."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("pending", "verifying", "verified", "failed")


def _timestamp(*, nullable: bool) -> Any:
    return sa.Column(
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=None if nullable else sa.func.now(),
    )


class EmailDomainRow(SQLModel, table=True):
    __tablename__ = "email_domains"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'verifying', 'verified', 'failed')", name="status"
        ),
        sa.UniqueConstraint("user_id", "domain"),
        # Serves "a user's domains, newest first" (scanned backwards) and keyset pagination.
        sa.Index(None, "user_id", "created_at", "id"),
        # First verifier wins: at most one account holds a name as verified.
        sa.Index(
            "uq_email_domains_verified_domain",
            "domain",
            unique=True,
            postgresql_where=sa.text("status = 'verified'"),
        ),
        # The sweeper's scan of verifying domains.
        sa.Index(
            "ix_email_domains_verifying",
            "verification_started_at",
            postgresql_where=sa.text("status = 'verifying'"),
        ),
    )

    id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    )
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    domain: str = Field(sa_column=sa.Column(sa.String(253), nullable=False))
    agentmail_domain_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(255), nullable=True)
    )
    status: str = Field(
        sa_column=sa.Column(sa.String(16), nullable=False, server_default="pending")
    )
    dns_records: list[dict[str, Any]] = Field(
        sa_column=sa.Column(JSONB, nullable=False, server_default=sa.text("'[]'::jsonb"))
    )
    verified_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))
    updated_at: datetime = Field(sa_column=_timestamp(nullable=False))
    status_reason: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True)
    )
    verification_started_at: datetime | None = Field(
        default=None, sa_column=_timestamp(nullable=True)
    )
    last_checked_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    # Bumped by every write: the state machine's writes are compare-and-set on it.
    version: int = Field(
        default=0,
        sa_column=sa.Column(sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )
    # The procrastinate job of the check running now, so checks of one domain never overlap.
    check_job_id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, nullable=True)
    )


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    )
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    prefix: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class DomainEventRow(SQLModel, table=True):
    """One row per change of a domain; kept after the domain is deleted (no foreign key)."""

    __tablename__ = "domain_events"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('created', 'status_changed', 'records_changed', 'deleted')", name="kind"
        ),
        sa.CheckConstraint(
            "cause IN ('create', 'override', 'verify', 'poll', 'sync', 'poller', 'timeout', "
            "'delete')",
            name="cause",
        ),
        # A domain's history, newest first; a user's events after an id (subscriptions).
        sa.Index(None, "domain_id", "id"),
        sa.Index(None, "user_id", "id"),
        sa.Index(None, "created_at"),
    )

    id: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    domain_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    from_status: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    to_status: str | None = Field(default=None, sa_column=sa.Column(sa.String(16)))
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    cause: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(128), nullable=False))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(128)))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))
    domain: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))


email_domains: sa.Table = EmailDomainRow.__table__  # type: ignore[attr-defined]
api_keys: sa.Table = ApiKeyRow.__table__  # type: ignore[attr-defined]
domain_events: sa.Table = DomainEventRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata
