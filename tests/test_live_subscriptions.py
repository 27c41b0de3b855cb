"""Live status across real processes: two `gql-gateway serve` processes on one database; changes
made through one reach subscribers of the other (the reference graphql-ws, graphql-sse and
Apollo clients under Node.js, and a Python graphql-transport-ws client)."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gql.db.engine import Database, driver_dsn
from gql.services.api_keys import ApiKeyService
from tests.conftest import create_domains
from tests.fakes import FakeAgentMail
from tests.helpers import NodeClient, Served, node_client, serve
from tests.live.clients import EVENT_FIELDS, SUBSCRIBE, Subscription, subscribe

# Generous: a loaded two-core machine runs several gateways and Node.js at once.
DELIVERY_SECONDS = 5.0
SUBSCRIBE_DOC = (
    "subscription($id: UUID, $after: ID) { emailDomainEvents(id: $id, after: $after) {"
    f" {EVENT_FIELDS} }} }}"
)


@pytest.fixture(scope="module")
def agentmail() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as fake:
        yield fake


def provider_env(agentmail: FakeAgentMail) -> dict[str, str]:
    return {
        "AGENTMAIL_API_KEY": "test",
        "AGENTMAIL_BASE_URL": agentmail.url,
        "PROVIDER_ATTEMPTS": "2",
        "PROVIDER_BACKOFF_SECONDS": "0",
        "PROVIDER_TIMEOUT_SECONDS": "2",
        "API_KEY_CACHE_SECONDS": "0",
    }


class Owner:
    def __init__(self, user_id: uuid.UUID, key: str, key_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.key = key
        self.key_id = key_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_owner(db: Database) -> Owner:
    user_id = uuid.uuid4()
    key, info = await ApiKeyService(db).create(user_id)
    return Owner(user_id, key, info.id)


async def last_event_id(db: Database, user_id: uuid.UUID) -> int:
    async with db.connect() as conn:
        value: int = await conn.fetchval(
            "SELECT coalesce(max(id), 0) FROM domain_events WHERE user_id = $1", user_id
        )
    return value


async def stored_event_ids(db: Database, user_id: uuid.UUID, after: int) -> list[int]:
    async with db.connect() as conn:
        rows = await conn.fetch(
            "SELECT id FROM domain_events WHERE user_id = $1 AND id > $2 ORDER BY id",
            user_id,
            after,
        )
    return [r["id"] for r in rows]


async def override(served: Served, owner: Owner, domain_id: uuid.UUID | str, status: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.patch(
            f"{served.url}/api/email/domains/{domain_id}",
            json={"status": status},
            headers=owner.headers,
        )
    assert response.status_code == 200, response.text


async def graphql(served: Served, owner: Owner, query: str, **variables: Any) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{served.url}/graphql",
            json={"query": query, "variables": variables},
            headers=owner.headers,
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def node_event(js: NodeClient, *, within: float = DELIVERY_SECONDS) -> dict[str, Any]:
    """The next event a Node.js subscriber printed (skipping its `connected` notice)."""
    while True:
        message = await js.next(within=within)
        if message["event"] != "connected":
            break
    assert message["event"] == "next", message
    assert not message["value"].get("errors"), message
    event: dict[str, Any] = message["value"]["data"]["emailDomainEvents"]
    return event


async def drop_queued_jobs(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs WHERE status = 'todo'")


async def listener_pids(database_url: str) -> set[int]:
    conn = await asyncpg.connect(driver_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'gql-gateway-listener'"
        )
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


async def terminate_listeners(database_url: str) -> set[int]:
    conn = await asyncpg.connect(driver_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'gql-gateway-listener'"
        )
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


async def test_a_subscriber_on_b_receives_every_change_made_through_a(
    database_url: str, db: Database, agentmail: FakeAgentMail
) -> None:
    owner = await new_owner(db)
    name = f"live-{uuid.uuid4().hex[:10]}.com"
    await drop_queued_jobs(db)
    env = {**provider_env(agentmail), "POLL_SCHEDULE_MINUTES": "[0.02]"}
    async with (
        serve(database_url, {**env, "WORKER": "true"}) as a,
        serve(database_url, env) as b,
        AsyncExitStack() as clients,
    ):
        created = await graphql(
            a,
            owner,
            "mutation($d: String!) { createEmailDomain(domain: $d) { id status } }",
            d=name,
        )
        domain_id = created["createEmailDomain"]["id"]
        assert created["createEmailDomain"]["status"] == "VERIFYING"
        after = await last_event_id(db, owner.user_id)
        variables = {"id": domain_id, "after": str(after)}
        request = json.dumps({"query": SUBSCRIBE_DOC, "variables": variables})
        python = await clients.enter_async_context(subscribe(b.ws_url, owner.key, variables))
        graphql_ws = await clients.enter_async_context(
            node_client("ws-subscribe.mjs", b.ws_url, request, owner.key)
        )
        graphql_sse = await clients.enter_async_context(
            node_client("sse-operation.mjs", f"{b.url}/graphql", request, json.dumps(owner.headers))
        )
        apollo = await clients.enter_async_context(
            node_client("apollo-subscribe.mjs", b.ws_url, request, owner.key)
        )

        async def everyone_receives(expected: tuple[str, str | None, str | None]) -> None:
            started = time.monotonic()
            events = [
                await python.event(within=DELIVERY_SECONDS + 10),
                await node_event(graphql_ws, within=DELIVERY_SECONDS + 10),
                await node_event(graphql_sse, within=DELIVERY_SECONDS + 10),
                await node_event(apollo, within=DELIVERY_SECONDS + 10),
            ]
            for event in events:
                assert (event["cause"], event["fromStatus"], event["toStatus"]) == expected
                assert event["domainId"] == domain_id
            assert len({e["id"] for e in events}) == 1, events
            print(f"{expected[0]}: all four subscribers in {time.monotonic() - started:.2f} s")

        # A poller transition (the worker runs in A).
        agentmail.set_status(name, "VERIFIED")
        await everyone_receives(("POLLER", "VERIFYING", "VERIFIED"))

        # An override through the REST shim on A: delivered within the bound.
        started = time.monotonic()
        await override(a, owner, domain_id, "failed")
        event = await python.event(within=DELIVERY_SECONDS)
        assert time.monotonic() - started < DELIVERY_SECONDS
        assert (event["cause"], event["toStatus"]) == ("OVERRIDE", "FAILED")
        assert event["actor"] == f"api_key:{owner.key_id}"
        assert event["domain"]["status"] == "FAILED"  # the domain after the change
        for js in (graphql_ws, graphql_sse, apollo):
            assert (await node_event(js))["id"] == event["id"]

        # A sync on A brings the provider's VERIFIED back.
        await graphql(a, owner, "{ emailDomains(sync: true) { edges { node { status } } } }")
        await everyone_receives(("SYNC", "FAILED", "VERIFIED"))

        # A delete: the last event of a one-domain stream, which then completes.
        await graphql(
            a,
            owner,
            "mutation($id: UUID!) { deleteEmailDomain(id: $id) { success } }",
            id=domain_id,
        )
        await everyone_receives(("DELETE", "VERIFIED", None))
        assert (await python.message())["type"] == "complete"
        assert (await graphql_ws.next())["event"] == "complete"
        assert (await graphql_sse.next())["event"] == "complete"
        assert (await apollo.next())["event"] == "complete"
    await drop_queued_jobs(db)


async def test_the_listener_killed_mid_stream_loses_and_repeats_nothing(
    database_url: str, db: Database
) -> None:
    owner = await new_owner(db)
    domains = await create_domains(db, owner.user_id, ["pending", "pending"])
    after = await last_event_id(db, owner.user_id)
    async with (
        serve(database_url) as a,
        serve(database_url, {"EVENT_LISTENER_MAX_BACKOFF_SECONDS": "0.5"}) as b,
        subscribe(b.ws_url, owner.key, {"after": str(after)}) as subscriber,
    ):
        statuses = ["failed", "pending"]
        received: list[dict[str, Any]] = []
        for i in range(30):
            await override(a, owner, domains[i % 2].id, statuses[(i // 2) % 2])
            if i in (9, 19):
                # Mid-stream: every listener of the database is cut off while changes go on.
                assert await terminate_listeners(database_url)
            if i == 4:
                received.append(await subscriber.event())
        while len(received) < 30:
            received.append(await subscriber.event(within=DELIVERY_SECONDS + 10))

        ids = [int(e["id"]) for e in received]
        assert ids == await stored_event_ids(db, owner.user_id, after)  # all, in order, once
        assert len(set(ids)) == 30
        # Nothing more comes: the next event is a new change, not a repeat.
        await override(a, owner, domains[0].id, "verifying")
        assert int((await subscriber.event())["id"]) > ids[-1]
        # Both processes hold a listener again.
        for _ in range(100):
            if len(await listener_pids(database_url)) >= 2:
                break
            await asyncio.sleep(0.1)
        assert "event listener connection lost" in b.output()


async def test_nobody_receives_another_users_events(database_url: str, db: Database) -> None:
    one, two = await new_owner(db), await new_owner(db)
    d1, d2 = await create_domains(db, one.user_id, ["pending", "pending"])
    (d3,) = await create_domains(db, two.user_id, ["pending"])
    async with serve(database_url) as served, AsyncExitStack() as stack:
        start = {
            "one-all": str(await last_event_id(db, one.user_id)),
            "two-all": str(await last_event_id(db, two.user_id)),
        }
        one_all = await stack.enter_async_context(
            subscribe(served.ws_url, one.key, {"after": start["one-all"]})
        )
        one_d1 = await stack.enter_async_context(
            subscribe(served.ws_url, one.key, {"id": str(d1.id), "after": start["one-all"]})
        )
        two_all = await stack.enter_async_context(
            subscribe(served.ws_url, two.key, {"after": start["two-all"]})
        )
        # Another user's domain, by id, is not found (its existence is not revealed).
        for owner, domain in ((two, d1), (one, d3)):
            async with subscribe(served.ws_url, owner.key, {"id": str(domain.id)}) as foreign:
                message = await foreign.message()
                assert message["type"] == "next", message
                (error,) = message["payload"]["errors"]
                assert error["extensions"]["code"] == "NOT_FOUND"

        # A resume position that is not an event id says what to send.
        async with subscribe(served.ws_url, one.key, {"after": "yesterday"}) as bad:
            message = await bad.message()
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert "`after` must be the `id` of an event" in error["message"]

        await override(served, two, d3.id, "failed")
        await override(served, one, d2.id, "failed")
        await override(served, one, d1.id, "failed")  # the last event `one` will see
        await override(served, two, d3.id, "verifying")  # the last event `two` will see

        async def until(subscription: Subscription, domain: uuid.UUID, status: str) -> list[str]:
            seen = []
            while True:
                event = await subscription.event(within=DELIVERY_SECONDS + 10)
                seen.append(event["domainId"])
                if event["domainId"] == str(domain) and event["toStatus"] == status:
                    return seen

        # Events arrive in id order, so a foreign event would show before the last one.
        assert await until(one_all, d1.id, "FAILED") == [str(d2.id), str(d1.id)]
        assert await until(one_d1, d1.id, "FAILED") == [str(d1.id)]
        assert await until(two_all, d3.id, "VERIFYING") == [str(d3.id), str(d3.id)]


async def test_limits_keepalive_and_a_revoked_key(database_url: str, db: Database) -> None:
    owner = await new_owner(db)
    (domain,) = await create_domains(db, owner.user_id, ["pending"])
    env = {
        "SUBSCRIPTION_KEEPALIVE_SECONDS": "0.3",
        "SUBSCRIPTION_MAX_PER_CONNECTION": "1",
        "SUBSCRIPTION_MAX_CONNECTIONS_PER_USER": "2",
        "REQUEST_TIMEOUT_SECONDS": "1",
        "API_KEY_CACHE_SECONDS": "0",
    }
    async with (
        serve(database_url, env) as served,
        subscribe(served.ws_url, owner.key) as first,
        subscribe(served.ws_url, owner.key) as second,
    ):
        # Keepalive: the server pings an idle connection; the subscription stays open.
        await override(served, owner, domain.id, "failed")
        assert (await first.event())["toStatus"] == "FAILED"
        await asyncio.sleep(1)
        await override(served, owner, domain.id, "pending")
        assert (await first.event())["toStatus"] == "PENDING"
        assert first.pings >= 2
        assert (await second.event())["toStatus"] == "FAILED"

        # A second subscription on one connection is refused (SUBSCRIPTION_MAX_PER_CONNECTION).
        await first.ws.send(
            json.dumps(
                {"id": "2", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {}}}
            )
        )
        refused = await first.message()
        assert (refused["id"], refused["type"]) == ("2", "error")
        assert "limit" in refused["payload"][0]["message"].lower()

        # A third connection of the same user is refused, saying what to do.
        async with subscribe(served.ws_url, owner.key) as third:
            message = await third.message()
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert "one subscription without `id` covers every domain" in error["message"]

        # Over SSE (its own connection: `second` makes room), the stream outlives
        # REQUEST_TIMEOUT_SECONDS and carries heartbeats.
        await second.ws.close()
        seen = await sse_lines_until_event(served, owner, domain.id)
        assert ": ping" in seen
        data = json.loads(next(s for s in seen if s.startswith("data: {"))[6:])
        assert data["data"]["emailDomainEvents"]["toStatus"] == "FAILED"

        # Revoking the key closes its live subscription (4403), and opens no new one.
        await ApiKeyService(db).revoke(owner.key_id)
        assert (await first.closed(within=DELIVERY_SECONDS)) == (
            4403,
            "Forbidden: the token was revoked or has expired",
        )
        with pytest.raises(ConnectionClosed) as refused_again:
            async with subscribe(served.ws_url, owner.key) as revoked:
                await revoked.message()
        assert refused_again.value.rcvd is not None
        assert refused_again.value.rcvd.code == 4403


async def sse_lines_until_event(served: Served, owner: Owner, domain_id: uuid.UUID) -> list[str]:
    """Open an SSE subscription, wait past the request time limit, change the domain, and
    return the stream's lines up to the event. Retried while a closed WebSocket's
    subscription is still being released (the per-user connection limit)."""
    for _ in range(50):
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream(
                "POST",
                f"{served.url}/graphql",
                json={"query": SUBSCRIBE, "variables": {"id": str(domain_id)}},
                headers={**owner.headers, "Accept": "text/event-stream"},
            ) as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            await asyncio.sleep(1.5)
            await override(served, owner, domain_id, "failed")
            seen: list[str] = []
            while not any(line.startswith("data: {") for line in seen):
                seen.append(await asyncio.wait_for(anext(lines), DELIVERY_SECONDS))
            if "RATE_LIMITED" not in seen[-1]:
                return seen
        await override(served, owner, domain_id, "pending")
    raise AssertionError("the SSE subscription was refused throughout")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_two_hundred_idle_subscribers_cost_bounded_memory(
    database_url: str, db: Database
) -> None:
    owner = await new_owner(db)
    (domain,) = await create_domains(db, owner.user_id, ["pending"])
    env = {"SUBSCRIPTION_MAX_CONNECTIONS_PER_USER": "1000"}
    statuses = iter(["failed", "pending", "failed"])
    async with serve(database_url, env) as served, AsyncExitStack() as stack:

        async def open_idle(n: int) -> list[Subscription]:
            subscriptions = [
                await stack.enter_async_context(subscribe(served.ws_url, owner.key))
                for _ in range(n)
            ]
            # One event reaches each: every subscription is registered and has run once.
            await override(served, owner, domain.id, next(statuses))
            for subscription in subscriptions:
                await subscription.event(within=DELIVERY_SECONDS + 20)
            return subscriptions

        await open_idle(20)  # warm up: first-use allocations are not per subscriber
        before = rss_kib(served.process.pid)
        await open_idle(200)
        grown = rss_kib(served.process.pid) - before
        print(f"200 idle subscribers: RSS grew by {grown} KiB ({grown / 200:.1f} KiB each)")
        assert grown / 200 < 512, f"{grown / 200:.0f} KiB per idle subscriber"
