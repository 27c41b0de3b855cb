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
        # One holder per name: only a row another account claimed the name from steps aside.
        sa.Index(
            "uq_email_domains_holder",
            "domain",
            unique=True,
            postgresql_where=sa.text("released_at IS NULL"),
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
    released_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
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
            "'claim', 'delete')",
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


class SandboxDomainRow(SQLModel, table=True):
    """The sandbox provider's own domains, shared by every process on the database."""

    __tablename__ = "sandbox_domains"

    domain: str = Field(sa_column=sa.Column(sa.String(253), primary_key=True))
    client_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True))
    verify_requested_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))


sandbox_domains: sa.Table = SandboxDomainRow.__table__  # type: ignore[attr-defined]
domain_events: sa.Table = DomainEventRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata


class CloudflareTokenRow(SQLModel, table=True):
    """A user's own Cloudflare API token, encrypted (Fernet); one per account."""

    __tablename__ = "cloudflare_tokens"

    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    token_encrypted: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    token_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    hint: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))


class ZoneBindingRow(SQLModel, table=True):
    """A zone of the operator's Cloudflare token that the operator bound to an account."""

    __tablename__ = "zone_bindings"
    __table_args__ = (sa.UniqueConstraint("zone_id", "user_id"),)

    id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    )
    zone_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    zone_name: str = Field(sa_column=sa.Column(sa.String(253), nullable=False))
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))


class DnsPublicationRow(SQLModel, table=True):
    """Which zone, reached with whose credentials, the gateway published a name's records in."""

    __tablename__ = "dns_publications"
    __table_args__ = (sa.UniqueConstraint("domain", "user_id", "zone_id"),)

    id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    )
    domain: str = Field(sa_column=sa.Column(sa.String(253), nullable=False))
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    zone_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    zone_name: str = Field(sa_column=sa.Column(sa.String(253), nullable=False))
    via: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    created_at: datetime = Field(sa_column=_timestamp(nullable=False))


cloudflare_tokens: sa.Table = CloudflareTokenRow.__table__  # type: ignore[attr-defined]
zone_bindings: sa.Table = ZoneBindingRow.__table__  # type: ignore[attr-defined]
dns_publications: sa.Table = DnsPublicationRow.__table__  # type: ignore[attr-defined]
