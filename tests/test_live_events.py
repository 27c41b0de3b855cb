"""Domain events through HTTP: every cause records its event, `statusHistory` tells the story,
and each DNS record carries the provider's verdict (against a fake AgentMail on loopback)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gql.app import create_app
from gql.db.engine import Database
from gql.services.container import Services
from gql.settings import Settings
from tests.conftest import make_settings, running, session_token
from tests.fakes import FakeAgentMail

CREATE = "mutation($d: String!) { createEmailDomain(domain: $d) { id status } }"
VERIFY = "mutation($id: UUID!, $poll: Boolean!) { verifyEmailDomain(id: $id, poll: $poll) { id } }"
OVERRIDE = (
    "mutation($id: UUID!, $s: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $s) { id status } }"
)
SYNC = "{ emailDomains(sync: true) { edges { node { id status } } } }"
DELETE = "mutation($id: UUID!) { deleteEmailDomain(id: $id) { success } }"
HISTORY = """
query($id: UUID!, $first: Int, $after: String) { emailDomain(id: $id) {
  statusHistory(first: $first, after: $after) {
    edges { cursor node { id kind fromStatus toStatus reason cause actor occurredAt
      domain { status statusReason } } }
    pageInfo { hasNextPage endCursor } } } }
"""
RECORDS = (
    "query($id: UUID!) { emailDomain(id: $id) {"
    " lastCheckedAt dnsRecords { type name status checkedAt } } }"
)


def settings_for(database_url: str, agentmail_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "agentmail_api_key": "test",
        "agentmail_base_url": agentmail_url,
        "provider_attempts": 2,
        "provider_backoff_seconds": 0,
        "provider_timeout_seconds": 2,
        "provider_deadline_seconds": 5,
        "poll_schedule_minutes": [0, 0, 0],
        "poll_window_minutes": 60,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


class Gateway:
    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.services: Services = app.state.services

    async def graphql(self, query: str, headers: dict[str, str], **variables: Any) -> Any:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def run_jobs(self, db: Database, domain_id: str) -> None:
        """Work this domain's due checks until none is left."""
        for _ in range(50):
            await self.services.jobs.run_worker(wait=False)
            async with db.connect() as conn:
                due = await conn.fetchval(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
                    " AND args ->> 'domain_id' = $1 AND scheduled_at <= now()",
                    domain_id,
                )
            if not due:
                return
        raise AssertionError("checks were still due after 50 worker runs")


@pytest.fixture(scope="module")
def agentmail() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as fake:
        yield fake


@pytest.fixture(scope="module")
async def gateway(database_url: str, agentmail: FakeAgentMail) -> AsyncIterator[Gateway]:
    app = create_app(settings_for(database_url, agentmail.url))
    async with running(app) as client:
        yield Gateway(app, client)


@pytest.fixture(autouse=True)
async def only_own_jobs(db: Database) -> AsyncIterator[None]:
    """Other modules' queued checks never run here, and ours never run there."""

    async def drop() -> None:
        async with db.connect() as conn:
            await conn.execute("DELETE FROM procrastinate_jobs WHERE status = 'todo'")

    await drop()
    yield
    await drop()


def jwt_headers(user_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(user_id)}"}


def new_name() -> str:
    return f"live-{uuid.uuid4().hex[:10]}.com"


async def events_of(db: Database, domain_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.fetch(
            "SELECT * FROM domain_events WHERE domain_id = $1 ORDER BY id", uuid.UUID(domain_id)
        )
    return [dict(r) for r in rows]


def story(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e["from_status"], e["to_status"], e["cause"]) for e in events]


async def test_every_cause_records_its_event_with_the_change(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database, database_url: str
) -> None:
    user = uuid.uuid4()
    key, info = await gateway.services.api_keys.create(user)
    by_key = {"Authorization": f"Bearer {key}"}
    by_session = jwt_headers(user)
    name = new_name()

    created = (await gateway.graphql(CREATE, by_session, d=name))["createEmailDomain"]
    domain_id = created["id"]
    assert story(await events_of(db, domain_id)) == [
        ("created", None, "pending", "create"),
        ("status_changed", "pending", "verifying", "verify"),  # marked verifying
        ("status_changed", "verifying", "verifying", "verify"),  # the provider's reason
    ]

    response = await gateway.client.patch(
        f"/api/email/domains/{domain_id}", json={"status": "failed"}, headers=by_key
    )
    assert response.status_code == 200
    again = await gateway.client.patch(
        f"/api/email/domains/{domain_id}", json={"status": "failed"}, headers=by_key
    )
    assert again.status_code == 200  # a no-op: no event
    (override,) = (await events_of(db, domain_id))[3:]
    assert (override["kind"], override["cause"], override["actor"]) == (
        "status_changed",
        "override",
        f"api_key:{info.id}",
    )
    assert (override["from_status"], override["to_status"]) == ("verifying", "failed")

    await gateway.graphql(VERIFY, by_session, id=domain_id, poll=False)
    agentmail.set_status(name, "FAILED", "ses_dkim_failed")
    await gateway.graphql(VERIFY, by_session, id=domain_id, poll=True)
    await gateway.graphql(OVERRIDE, by_session, id=domain_id, s="VERIFYING")
    agentmail.set_status(name, "VERIFYING", "ses_dkim_pending")
    await gateway.graphql(SYNC, by_session)
    agentmail.set_status(name, "VERIFIED")
    await gateway.run_jobs(db, domain_id)
    # The domain as it stands is the one its last event carries: no change went unrecorded.
    async with db.connect() as conn:
        updated_at = await conn.fetchval(
            "SELECT updated_at FROM email_domains WHERE id = $1", uuid.UUID(domain_id)
        )
    last = (await events_of(db, domain_id))[-1]
    assert last["domain"]["updated_at"] == updated_at.isoformat()
    await gateway.graphql(DELETE, by_session, id=domain_id)

    events = await events_of(db, domain_id)
    assert story(events)[4:] == [
        ("status_changed", "failed", "verifying", "verify"),
        ("status_changed", "verifying", "failed", "poll"),
        ("status_changed", "failed", "verifying", "override"),
        ("status_changed", "verifying", "verifying", "sync"),
        ("status_changed", "verifying", "verified", "poller"),
        ("deleted", "verified", None, "delete"),
    ]
    actors = {e["cause"]: e["actor"] for e in events}
    assert actors["poller"] == "system"
    assert actors["sync"] == actors["delete"] == f"session:{user}"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[-1]["domain"]["status"] == "verified"  # the domain as it was deleted

    # The window closing is its own cause, recorded by the system.
    app = create_app(settings_for(database_url, agentmail.url, poll_window_minutes=0.001))
    async with running(app) as client:
        short = Gateway(app, client)
        other = (await short.graphql(CREATE, by_session, d=new_name()))["createEmailDomain"]
        await asyncio.sleep(0.1)
        await short.run_jobs(db, other["id"])
    (*_, timeout) = await events_of(db, other["id"])
    assert (timeout["kind"], timeout["to_status"], timeout["reason"]) == (
        "status_changed",
        "failed",
        "verification_timeout",
    )
    assert (timeout["cause"], timeout["actor"]) == ("timeout", "system")


async def test_a_write_that_changes_nothing_or_is_refused_records_nothing(
    gateway: Gateway, db: Database
) -> None:
    user = uuid.uuid4()
    domain_id = (await gateway.graphql(CREATE, jwt_headers(user), d=new_name()))[
        "createEmailDomain"
    ]["id"]
    before = await events_of(db, domain_id)
    stranger = await gateway.client.post(
        "/graphql",
        json={"query": OVERRIDE, "variables": {"id": domain_id, "s": "FAILED"}},
        headers=jwt_headers(uuid.uuid4()),
    )
    assert stranger.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    stranger_delete = await gateway.client.post(
        "/graphql",
        json={"query": DELETE, "variables": {"id": domain_id}},
        headers=jwt_headers(uuid.uuid4()),
    )
    assert stranger_delete.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    await gateway.graphql(OVERRIDE, jwt_headers(user), id=domain_id, s="VERIFYING")  # as it is
    assert await events_of(db, domain_id) == before


async def test_a_change_of_the_records_alone_is_a_records_changed_event(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = uuid.uuid4(), new_name()
    created = (await gateway.graphql(CREATE, jwt_headers(user), d=name))["createEmailDomain"]
    agentmail.set_status(name, "VERIFYING", "ses_dkim_pending", records="MISSING")
    await gateway.graphql(VERIFY, jwt_headers(user), id=created["id"], poll=True)
    before = len(await events_of(db, created["id"]))
    agentmail.set_status(name, "VERIFYING", "ses_dkim_pending", records="VALID")
    await gateway.graphql(VERIFY, jwt_headers(user), id=created["id"], poll=True)
    await gateway.graphql(VERIFY, jwt_headers(user), id=created["id"], poll=True)  # unchanged
    events = await events_of(db, created["id"])
    assert story(events[before:]) == [("records_changed", "verifying", "verifying", "poll")]
    assert {r["status"] for r in events[-1]["domain"]["dns_records"]} == {"VALID"}


async def test_status_history_tells_the_whole_story_newest_first(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = uuid.uuid4(), new_name()
    headers = jwt_headers(user)
    key, info = await gateway.services.api_keys.create(user)
    # The provider cannot start a verification at create: the domain stays pending.
    agentmail.fail_next(2, 503, method="POST", path=f"/v0/domains/{name}/verify")
    domain_id = (await gateway.graphql(CREATE, headers, d=name))["createEmailDomain"]["id"]
    await gateway.graphql(VERIFY, headers, id=domain_id, poll=False)
    agentmail.set_status(name, "VERIFIED")
    await gateway.run_jobs(db, domain_id)
    await gateway.client.patch(
        f"/api/email/domains/{domain_id}",
        json={"status": "failed"},
        headers={"Authorization": f"Bearer {key}"},
    )
    await gateway.graphql(SYNC, headers)

    page = (await gateway.graphql(HISTORY, headers, id=domain_id, first=100))["emailDomain"]
    nodes = [e["node"] for e in page["statusHistory"]["edges"]]
    told = [(n["kind"], n["fromStatus"], n["toStatus"], n["cause"], n["actor"]) for n in nodes]
    session, api_key = f"session:{user}", f"api_key:{info.id}"
    assert told == [
        ("STATUS_CHANGED", "FAILED", "VERIFIED", "SYNC", session),
        ("STATUS_CHANGED", "VERIFIED", "FAILED", "OVERRIDE", api_key),
        ("STATUS_CHANGED", "VERIFYING", "VERIFIED", "POLLER", "system"),
        ("STATUS_CHANGED", "VERIFYING", "VERIFYING", "VERIFY", session),  # the provider's reason
        ("STATUS_CHANGED", "PENDING", "VERIFYING", "VERIFY", session),
        # The create's own trigger, which the provider could not start.
        ("STATUS_CHANGED", "VERIFYING", "PENDING", "VERIFY", session),
        ("STATUS_CHANGED", "PENDING", "VERIFYING", "VERIFY", session),
        ("CREATED", None, "PENDING", "CREATE", session),
    ]
    assert nodes[5]["reason"] == "verification_not_started"
    assert [n["domain"]["status"] for n in nodes] == [n["toStatus"] for n in nodes]
    times = [n["occurredAt"] for n in nodes]
    assert times == sorted(times, reverse=True)
    assert page["statusHistory"]["pageInfo"]["hasNextPage"] is False

    # Paging: two at a time, following endCursor, gives the same story.
    seen: list[str] = []
    after = None
    while True:
        data = await gateway.graphql(HISTORY, headers, id=domain_id, first=2, after=after)
        history = data["emailDomain"]["statusHistory"]
        seen += [e["node"]["id"] for e in history["edges"]]
        if not history["pageInfo"]["hasNextPage"]:
            break
        after = history["pageInfo"]["endCursor"]
    assert seen == [n["id"] for n in nodes]

    # Another user sees neither the domain nor its history.
    stranger = await gateway.client.post(
        "/graphql",
        json={"query": HISTORY, "variables": {"id": domain_id}},
        headers=jwt_headers(uuid.uuid4()),
    )
    assert stranger.json()["data"]["emailDomain"] is None


async def test_status_history_refuses_a_foreign_cursor_with_what_to_send(
    gateway: Gateway,
) -> None:
    user = uuid.uuid4()
    headers = jwt_headers(user)
    domain_id = (await gateway.graphql(CREATE, headers, d=new_name()))["createEmailDomain"]["id"]
    response = await gateway.client.post(
        "/graphql",
        json={"query": HISTORY, "variables": {"id": domain_id, "after": "bm90LWEtY3Vyc29y"}},
        headers=headers,
    )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "endCursor" in error["message"]


async def test_each_record_carries_the_providers_verdict_and_rest_keeps_its_shape(
    gateway: Gateway, agentmail: FakeAgentMail
) -> None:
    user, name = uuid.uuid4(), new_name()
    key, _ = await gateway.services.api_keys.create(user)
    headers = jwt_headers(user)
    domain_id = (await gateway.graphql(CREATE, headers, d=name))["createEmailDomain"]["id"]
    agentmail.set_status(name, "INVALID", "dns_records_invalid")
    await gateway.graphql(VERIFY, headers, id=domain_id, poll=True)

    domain = (await gateway.graphql(RECORDS, headers, id=domain_id))["emailDomain"]
    provider = agentmail.domain(name)
    assert provider is not None
    live = {(r["type"], r["name"]): r["status"] for r in provider["records"]}
    assert {(r["type"], r["name"]): r["status"] for r in domain["dnsRecords"]} == live
    assert set(live.values()) == {"INVALID"}
    assert {r["checkedAt"] for r in domain["dnsRecords"]} == {domain["lastCheckedAt"]}

    response = await gateway.client.patch(
        f"/api/email/domains/{domain_id}",
        json={"status": "pending"},
        headers={"Authorization": f"Bearer {key}"},
    )
    records = response.json()["domain"]["dns_records"]
    assert records
    assert all(set(r) == {"type", "name", "value", "priority"} for r in records)


async def test_a_change_whose_event_cannot_be_stored_is_not_made(
    gateway: Gateway, db: Database
) -> None:
    user = uuid.uuid4()
    key, _ = await gateway.services.api_keys.create(user)
    domain_id = (await gateway.graphql(CREATE, jwt_headers(user), d=new_name()))[
        "createEmailDomain"
    ]["id"]
    before = await events_of(db, domain_id)
    async with db.connect() as conn:
        status = await conn.fetchval(
            "SELECT status FROM email_domains WHERE id = $1", uuid.UUID(domain_id)
        )
        await conn.execute(
            "ALTER TABLE domain_events ADD CONSTRAINT refuse_every_event CHECK (false) NOT VALID"
        )
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            response = await c.patch(
                f"/api/email/domains/{domain_id}",
                json={"status": "failed"},
                headers={"Authorization": f"Bearer {key}"},
            )
    finally:
        async with db.connect() as conn:
            await conn.execute("ALTER TABLE domain_events DROP CONSTRAINT refuse_every_event")
    assert response.status_code == 500
    async with db.connect() as conn:
        after = await conn.fetchval(
            "SELECT status FROM email_domains WHERE id = $1", uuid.UUID(domain_id)
        )
    assert after == status != "failed"  # the row change went with its event
    assert await events_of(db, domain_id) == before
