"""The services one gateway process shares between its transports and its worker."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from gql.db.engine import Database, driver_dsn
from gql.db.queue import QUEUE
from gql.jobs import JobQueue
from gql.providers.agentmail import AgentMailProvider
from gql.providers.cloudflare import CloudflareDns
from gql.providers.dns_resolver import TxtResolver
from gql.providers.sandbox import SandboxProvider
from gql.providers.verification import VerificationProvider
from gql.services.access import AccessService, RateLimiter
from gql.services.api_keys import ApiKeyService
from gql.services.claims import ClaimService, NameGuard
from gql.services.dns import DnsService
from gql.services.domains import DomainService
from gql.services.events import EventService
from gql.services.lifecycle import LifecycleService
from gql.services.notifications import EventHub
from gql.services.poller import Poller
from gql.services.seed import SeedService
from gql.services.state_writer import StateWriter
from gql.services.zones import ZoneService
from gql.settings import Settings
from gql.supervision import WorkerSupervisor

# Logged once by the serving process (the CLI's other commands never verify anything).
SANDBOX_NOTICE = (
    "SANDBOX MODE: no AGENTMAIL_API_KEY is set, so verification is simulated (see README, "
    "'Sandbox mode'). Set AGENTMAIL_API_KEY to use AgentMail."
)


# In sandbox mode the poller checks every 15 s at first, so a demo settles within a minute,
# unless POLL_SCHEDULE_MINUTES / POLL_WINDOW_MINUTES are set explicitly.
SANDBOX_SCHEDULE = {"poll_schedule_minutes": [0.25, 0.25, 0.5, 1, 2, 5], "poll_window_minutes": 30}


def _lifecycle_settings(settings: Settings) -> Settings:
    if settings.agentmail_api_key is not None:
        return settings
    unset = {k: v for k, v in SANDBOX_SCHEDULE.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=unset)


def _provider(settings: Settings, db: Database) -> VerificationProvider:
    if settings.agentmail_api_key is None:
        return SandboxProvider(db, settings.sandbox_verify_seconds)
    return AgentMailProvider(settings)


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    jobs: JobQueue
    worker: WorkerSupervisor
    provider: VerificationProvider
    dns: DnsService
    zones: ZoneService
    claims: ClaimService
    domains: DomainService
    lifecycle: LifecycleService
    poller: Poller
    api_keys: ApiKeyService
    access: AccessService
    seed: SeedService
    events: EventService

    @property
    def sandbox(self) -> bool:
        return isinstance(self.provider, SandboxProvider)


@asynccontextmanager
async def open_services(url: str, settings: Settings) -> AsyncIterator[Services]:
    """Connect everything a process needs, and close it all on exit, or on a failure to open.

    Nothing here waits for the database: when it is down, requests answer 503 until it is back.
    """
    async with AsyncExitStack() as stack:
        resolver = TxtResolver(settings)  # first: a bad CLAIM_RESOLVERS entry opens nothing
        db = Database(url, settings)
        provider = _provider(settings, db)
        stack.push_async_callback(provider.close)
        token = settings.cloudflare_api_token
        operator = None if token is None else CloudflareDns(settings, token.get_secret_value())
        zones = ZoneService(db, settings, operator)
        dns = DnsService(zones)
        stack.push_async_callback(dns.close)
        await db.open()
        stack.push_async_callback(db.close)
        jobs = JobQueue(driver_dsn(url), pool_timeout=settings.db_pool_timeout)
        await jobs.open()
        stack.push_async_callback(jobs.close)
        api_keys = ApiKeyService(db)
        access = AccessService(settings, api_keys, RateLimiter(settings))
        stack.callback(access.limiter.close)
        events = EventService(db, EventHub(db, driver_dsn(url), settings), settings)
        events.register_pruning(jobs.app, queue=QUEUE)
        lifecycle_settings = _lifecycle_settings(settings)
        writer = StateWriter(db, lifecycle_settings)
        lifecycle = LifecycleService(db, provider, dns, writer, lifecycle_settings)
        poller = Poller(db, provider, writer)
        jobs.handle_with(
            check=lambda domain_id, attempt, job_id: poller.check(
                domain_id, attempt, job_id=job_id
            ),
            cleanup=lifecycle.cleanup_provider,
            sweep=poller.sweep,
        )
        services = Services(
            db=db,
            jobs=jobs,
            worker=WorkerSupervisor(
                jobs,
                db,
                backoff_seconds=settings.worker_restart_seconds,
                max_backoff_seconds=settings.worker_restart_max_seconds,
            ),
            provider=provider,
            dns=dns,
            zones=zones,
            claims=ClaimService(db, resolver, NameGuard(settings), lifecycle.create, writer),
            domains=DomainService(db, writer),
            lifecycle=lifecycle,
            poller=poller,
            api_keys=api_keys,
            access=access,
            seed=SeedService(db),
            events=events,
        )
        yield services
