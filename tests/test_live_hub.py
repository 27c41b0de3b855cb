"""The event hub and service in process: a slow consumer is ended with where to resume, events
past their retention are pruned by a periodic job, and a hub that cannot reach the database
refuses subscriptions clearly."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gql.db.engine import Database, driver_dsn
from gql.errors import Unavailable
from gql.models import Principal, Status
from gql.services.container import Services
from gql.services.domains import DomainService
from gql.services.events import EventService, SubscriberTooSlow
from gql.services.notifications import EventHub
from gql.services.state_writer import StateWriter
from gql.settings import Settings
from tests.conftest import create_domains, make_settings


@pytest.fixture
async def small_hub(database_url: str, db: Database) -> AsyncIterator[EventService]:
    settings = make_settings(database_url, subscription_queue_size=2)
    hub = EventHub(db, driver_dsn(database_url), settings)
    await hub.start()
    try:
        for _ in range(100):
            if hub.position is not None:
                break
            await asyncio.sleep(0.05)
        yield EventService(db, hub, settings)
    finally:
        await hub.stop()


async def test_a_consumer_that_falls_behind_is_ended_and_can_resume_without_loss(
    small_hub: EventService, db: Database, settings: Settings
) -> None:
    user = uuid.uuid4()
    principal = Principal(user_id=user, via="api_key", actor="api_key:test")
    (domain,) = await create_domains(db, user, ["pending"])
    hub, stream = (
        small_hub.hub,
        small_hub.stream(principal, domain_id=None, after=None, connection=object()),
    )
    first = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.2)  # the stream registers with the hub and waits

    overrides = DomainService(db, StateWriter(db, settings))
    await overrides.override_status(principal, domain.id, Status.FAILED)
    received = await asyncio.wait_for(first, 10)
    # The consumer now holds that event and reads no further.
    for status in [Status.PENDING, Status.FAILED, Status.PENDING]:
        await overrides.override_status(principal, domain.id, status)
    async with db.connect() as conn:
        last = await conn.fetchval("SELECT max(id) FROM domain_events WHERE user_id = $1", user)
    while hub.position is None or hub.position < last:
        await asyncio.sleep(0.05)
    # Three more events for a queue of two, none read: the subscription ends, with where to
    # resume; the queue never held more than two.
    with pytest.raises(SubscriberTooSlow) as ended:
        await asyncio.wait_for(anext(stream), 10)
    assert "after" in ended.value.message
    assert ended.value.extensions == {
        "code": "SUBSCRIBER_TOO_SLOW",
        "resumeAfter": str(received.id),
    }

    # Resuming from before the first of them delivers all four, in order.
    async with db.connect() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM domain_events WHERE user_id = $1 ORDER BY id", user
            )
        ]
    resumed = small_hub.stream(
        principal, domain_id=None, after=int(received.id) - 1, connection=object()
    )
    got = [(await asyncio.wait_for(anext(resumed), 10)).id for _ in ids]
    await resumed.aclose()
    assert got == ids


async def test_events_older_than_the_retention_are_pruned_by_a_periodic_job(
    services: Services, db: Database
) -> None:
    user = uuid.uuid4()
    principal = Principal(user_id=user, via="api_key")
    (domain,) = await create_domains(db, user, ["pending"])
    await services.domains.override_status(principal, domain.id, Status.FAILED)
    await services.domains.override_status(principal, domain.id, Status.PENDING)
    async with db.connect() as conn:
        old, new = await conn.fetch(
            "SELECT id FROM domain_events WHERE domain_id = $1 ORDER BY id", domain.id
        )
        await conn.execute(
            "UPDATE domain_events SET created_at = now() - interval '91 days' WHERE id = $1",
            old["id"],
        )
    assert await services.events.prune() >= 1
    async with db.connect() as conn:
        left = await conn.fetch("SELECT id FROM domain_events WHERE domain_id = $1", domain.id)
    assert [r["id"] for r in left] == [new["id"]]

    task = services.jobs.app.tasks["prune_domain_events"]
    periodic = services.jobs.app.periodic_registry.periodic_tasks
    assert any(t.task is task for t in periodic.values())


async def test_a_hub_that_cannot_reach_the_database_refuses_subscriptions_clearly(
    database_url: str, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, event_listener_max_backoff_seconds=0.2)
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"
    hub = EventHub(db, unreachable, settings)
    service = EventService(db, hub, settings)
    await hub.start()
    try:
        await asyncio.sleep(0.5)
        stream = service.stream(
            Principal(user_id=uuid.uuid4(), via="api_key"),
            domain_id=None,
            after=None,
            connection=object(),
        )
        with pytest.raises(Unavailable, match="retry"):
            await anext(stream)
    finally:
        await hub.stop()
    assert "event listener is down" in caplog.text
