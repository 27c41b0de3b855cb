"""Configuration, read from the environment (and an optional `.env` file)."""

from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev-secret", ""})


def asyncpg_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` URLs as well as `postgresql+asyncpg://`."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError(
        "DATABASE_URL must start with postgresql:// or postgresql+asyncpg:// "
        f"(got {url.split('://', 1)[0]}://…)"
    )


class Settings(BaseSettings):
    """Every setting has a safe default for development; production refuses unsafe ones."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; when unset an embedded server is started in DATA_DIR.",
    )
    data_dir: Path = Path(".data")
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    # Worker supervision: how soon a failed queue worker is started again (doubling up to the max).
    worker_restart_seconds: float = Field(default=1.0, gt=0)
    worker_restart_max_seconds: float = Field(default=30.0, gt=0)

    jwt_secret: SecretStr | None = None
    jwt_public_key: SecretStr | None = None
    jwt_algorithms: list[str] = ["HS256"]
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0)
    api_key_cache_seconds: float = Field(default=10.0, ge=0)

    agentmail_api_key: SecretStr | None = Field(
        default=None, description="Unset: the built-in sandbox provider is used."
    )
    agentmail_base_url: str = "https://api.agentmail.to"
    cloudflare_api_token: SecretStr | None = None
    cloudflare_base_url: str = "https://api.cloudflare.com/client/v4"
    # Zones and name claims: users' own Cloudflare tokens, and the DNS challenge of a claim.
    cloudflare_token_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts users' Cloudflare tokens; unset: users cannot "
        "connect a token (operator-bound zones still work).",
    )
    claim_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the claim challenges; required in production."
    )
    claim_resolvers: list[str] = Field(
        default=[], description="DNS resolvers asked for claim challenges (ip or ip:port)."
    )
    claim_dns_timeout_seconds: float = Field(default=5.0, gt=0)
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    provider_attempts: int = Field(default=4, ge=1)
    provider_backoff_seconds: float = Field(default=0.5, ge=0)
    provider_max_backoff_seconds: float = Field(default=5.0, ge=0)
    provider_deadline_seconds: float = Field(default=20.0, gt=0)
    poll_schedule_minutes: list[float] = [10, 20, 40, 80, 160, 320]
    poll_window_minutes: float = Field(default=720, gt=0)
    sandbox_verify_seconds: float = Field(default=20, ge=0)
    worker: bool = Field(default=True, description="Run the poller inside `serve`.")
    # Domain lifecycle: provider fan-out per request, and how many domains one account may hold.
    provider_concurrency: int = Field(default=8, ge=1)
    provider_calls_per_request: int = Field(default=250, ge=1)
    max_domains_per_account: int = Field(default=100, ge=1)

    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    rate_limit: str = "600/minute"
    rate_limit_anonymous: str = "60/minute"
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where counters live: memory:// (one process) or async+redis://host:6379.",
    )
    # Abuse limits: document cost, session tokens, HTTP connections and the hosts served.
    graphql_max_fragment_spreads: int = Field(default=100, ge=0)
    graphql_document_cache_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    jwt_max_lifetime_seconds: int = Field(default=24 * 3600, ge=1)
    jwt_max_bytes: int = Field(default=4096, ge=256)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=1000, ge=1)
    allowed_hosts: list[str] = ["*"]

    graphiql: bool = True
    introspection: bool = True
    graphql_document_cache_size: int = Field(default=512, ge=0)
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=15, ge=0)
    graphql_max_introspection_depth: int = Field(default=15, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=1)
    graphql_max_nodes: int = Field(default=10_000, ge=1)
    graphql_max_batch: int = Field(
        default=0, ge=0, description="Operations per batched request; 0 turns batching off."
    )
    # Speed: compiled execution plans and persisted documents.
    graphql_compiled_plans: bool = Field(
        default=True, description="Run validated operations through compiled plans."
    )
    graphql_apq_cache_size: int = Field(
        default=1000, ge=0, description="Automatic persisted queries kept; 0 turns APQ off."
    )
    graphql_trusted_documents: Path | None = Field(
        default=None, description="Manifest of trusted documents (Apollo or Relay format)."
    )
    graphql_trusted_documents_only: bool = Field(
        default=False, description="Execute only the documents in the manifest."
    )
    cors_origins: list[str] = []
    # Live status: how long domain events are kept, and the limits of subscriptions.
    event_retention_days: float = Field(default=90, gt=0)
    subscription_keepalive_seconds: float = Field(default=15, gt=0)
    subscription_max_per_connection: int = Field(default=10, ge=1)
    subscription_max_connections_per_user: int = Field(default=20, ge=1)
    subscription_queue_size: int = Field(default=100, ge=1)
    event_listener_max_backoff_seconds: float = Field(default=10, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_log: bool = True
    log_level: str = "INFO"
    # Observability: log format, Prometheus metrics, OpenTelemetry traces (README "Operations").
    log_format: Literal["text", "json"] | None = Field(
        default=None, description="Unset: json in production, text otherwise."
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics on /metrics.")
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics requires `Authorization: Bearer <token>`."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port (on HOST) instead of the gateway's own.",
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Where `gql-gateway worker` serves /metrics."
    )
    tracing: bool = Field(
        default=False,
        description="Export OpenTelemetry spans over OTLP (needs the `tracing` extra).",
    )

    @field_validator(
        "log_format", "metrics_token", "metrics_port", "worker_metrics_port", mode="before"
    )
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def json_logs(self) -> bool:
        if self.log_format is None:
            return self.environment == "production"
        return self.log_format == "json"

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else asyncpg_url(value)

    @field_validator(
        "jwt_secret",
        "jwt_public_key",
        "agentmail_api_key",
        "cloudflare_api_token",
        "cloudflare_token_key",
        "claim_secret",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("cloudflare_token_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Fernet(value.get_secret_value())
            except ValueError:
                raise ValueError(
                    "CLOUDFLARE_TOKEN_KEY must be a Fernet key (32 url-safe base64-encoded bytes):"
                    " make one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`"
                ) from None
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: list[str]) -> list[str]:
        if not value or any(alg.lower() == "none" for alg in value):
            raise ValueError('JWT_ALGORITHMS must list real algorithms, e.g. ["HS256"]')
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.environment != "production":
            return self
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is not None and (secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32):
            raise ValueError("JWT_SECRET must be a real secret of at least 32 characters")
        if self.database_url is None:
            raise ValueError("DATABASE_URL is required in production (no embedded server)")
        claim = self.claim_secret.get_secret_value() if self.claim_secret else ""
        if claim.lower() in PLACEHOLDER_SECRETS or len(claim) < 32:
            raise ValueError("CLAIM_SECRET must be a real secret of at least 32 characters")
        return self

    @model_validator(mode="after")
    def _trusted_documents_need_a_manifest(self) -> "Settings":
        if self.graphql_trusted_documents_only and self.graphql_trusted_documents is None:
            raise ValueError(
                "GRAPHQL_TRUSTED_DOCUMENTS_ONLY needs GRAPHQL_TRUSTED_DOCUMENTS (the manifest)"
            )
        return self
