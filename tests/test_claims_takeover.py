"""One holder per name, and the DNS claim that moves it, through HTTP (POST /graphql).

The gateway talks to the fake AgentMail on loopback and resolves claim challenges against a
DNS server on loopback (tests/dns_server.py).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from gql.app import create_app
from gql.db import domains as domains_repo
from gql.db.engine import Database, driver_dsn
from gql.db.migrate import alembic_config
from gql.models import Status
from gql.services.state_writer import StateWriter
from gql.services.transitions import Answer, Cause, Event
from gql.settings import Settings
from tests.conftest import running
from tests.dns_server import LoopbackDns
from tests.fakes import FakeAgentMail
from tests.test_lifecycle import (
    CREATE,
    DELETE,
    FIELDS,
    LIST,
    Gateway,
    User,
    codes,
    create,
    fetch,
    lifecycle_settings,
    new_name,
    new_user,
    post,
    rows_named,
    verify,
)
from tests.test_live_events import HISTORY

CLAIM = f"mutation Claim($d: String!) {{ claimEmailDomain(domain: $d) {{ {FIELDS} }} }}"
CHALLENGE = (
    "query Challenge($d: String!) { emailDomainClaim(domain: $d) {"
    " domain recordType recordName recordValue } }"
)
OVERRIDE = (
    "mutation Set($id: UUID!, $s: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $s) { id status } }"
)


@pytest.fixture(scope="module")
def agentmail() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as fake:
        yield fake


@pytest.fixture(scope="module")
def dns() -> Iterator[LoopbackDns]:
    with LoopbackDns() as server:
        yield server


@pytest.fixture(scope="module")
async def gateway(
    database_url: str, agentmail: FakeAgentMail, dns: LoopbackDns, db: Database
) -> AsyncIterator[Gateway]:
    settings = lifecycle_settings(
        database_url,
        agentmail.url,
        claim_resolvers=[dns.resolver],
        claim_dns_timeout_seconds=2,
        poll_schedule_minutes=[60],
    )
    app = create_app(settings)
    async with running(app) as client:
        yield Gateway(app, client, db)


async def challenge(gateway: Gateway, user: User, name: str) -> dict[str, str]:
    body = await post(gateway.client, CHALLENGE, user, d=name)
    assert "errors" not in body, body
    result: dict[str, str] = body["data"]["emailDomainClaim"]
    return result


def provider_calls(agentmail: FakeAgentMail, name: str) -> int:
    """Requests that could change the provider's domain of `name` (creates and verifies)."""
    creates = [r for r in agentmail.requests_to("POST", "/v0/domains") if r.json["domain"] == name]
    return len(creates) + agentmail.calls("POST", f"/v0/domains/{name}/verify")


async def holding_rows(db: Database, name: str) -> list[asyncpg.Record]:
    async with db.connect() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM email_domains WHERE domain = $1 ORDER BY created_at", name
        )
    return rows


async def test_a_second_account_cannot_take_over_a_name_being_verified(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    """Issue 8, finding 3: B's create of A's name restarted A's verification and won it."""
    holder, intruder, name = new_user(), new_user(), new_name("victim-shop")
    agentmail.add_domain(name)
    agentmail.script_verification(name, [("VERIFYING", "ses_dkim_pending")])
    held = await create(gateway, holder, name)
    assert held["status"] == "VERIFYING"
    before = provider_calls(agentmail, name)

    body = await post(gateway.client, CREATE, intruder, domain=name)

    assert codes(body) == ["CONFLICT"]
    error = body["errors"][0]
    assert "held by another account" in error["message"]
    claim = error["extensions"]["claim"]
    assert claim["recordType"] == "TXT"
    assert claim["recordName"] == f"_gateway-claim.{name}"
    assert claim["recordValue"].startswith("gateway-claim=")
    assert claim["recordValue"] in error["message"]
    assert claim["mutation"] == "claimEmailDomain"
    assert provider_calls(agentmail, name) == before, "the intruder reached the provider"
    assert await rows_named(db, intruder, name) == 0

    agentmail.set_status(name, "VERIFIED")
    polled = (await verify(gateway, holder, held["id"], poll=True))["data"]["verifyEmailDomain"]
    assert polled["status"] == "VERIFIED"
    nodes = await post(gateway.client, LIST, intruder, sync=True)
    assert nodes["data"]["emailDomains"]["totalCount"] == 0


async def test_an_override_to_failed_does_not_free_the_name(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    """Issue 7, finding 3: ownership never moves through a cache-only override."""
    holder, other, name = new_user(), new_user(), new_name()
    agentmail.add_domain(name)
    agentmail.script_verification(name, ["VERIFIED"])
    held = await create(gateway, holder, name)
    assert held["status"] == "VERIFIED"
    body = await post(gateway.client, OVERRIDE, holder, id=held["id"], s="FAILED")
    assert body["data"]["updateEmailDomainStatus"]["status"] == "FAILED"

    assert codes(await post(gateway.client, CREATE, other, domain=name)) == ["CONFLICT"]
    synced = await post(gateway.client, LIST, other, sync=True)
    assert synced["data"]["emailDomains"]["totalCount"] == 0
    rows = await holding_rows(db, name)
    assert [(r["user_id"], r["released_at"]) for r in rows] == [(holder.id, None)]

    # A copy from before one holder per name, as migration 0006 left it, stays as it is too.
    async with db.connect() as conn:
        await conn.execute(
            "INSERT INTO email_domains (user_id, domain, agentmail_domain_id, status,"
            " status_reason, released_at) VALUES ($1, $2, $2, 'failed',"
            " 'claimed_by_another_account', now())",
            other.id,
            name,
        )
    synced = await post(gateway.client, LIST, other, sync=True)
    (copy,) = [e["node"] for e in synced["data"]["emailDomains"]["edges"]]
    assert (copy["status"], copy["statusReason"]) == ("FAILED", "claimed_by_another_account")
    assert codes(await verify(gateway, other, copy["id"], poll=True)) == ["CONFLICT"]


async def test_a_claim_without_the_record_changes_nothing(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    holder, claimant, name = new_user(), new_user(), new_name()
    held = await create(gateway, holder, name)
    before = provider_calls(agentmail, name)

    body = await post(gateway.client, CLAIM, claimant, d=name)
    assert codes(body) == ["CONFLICT"]
    assert "no TXT record is published there yet" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["claim"] == await challenge(gateway, claimant, name) | {
        "mutation": "claimEmailDomain"
    }

    assert codes(await post(gateway.client, CLAIM, claimant, d=name)) == ["CONFLICT"]
    assert provider_calls(agentmail, name) == before
    assert await rows_named(db, claimant, name) == 0
    kept = await fetch(gateway, holder, held["id"])
    assert (kept["status"], kept["updatedAt"]) == (held["status"], held["updatedAt"])


async def test_a_claim_with_another_value_says_what_was_seen(
    gateway: Gateway, dns: LoopbackDns
) -> None:
    holder, claimant, name = new_user(), new_user(), new_name()
    await create(gateway, holder, name)
    theirs = await challenge(gateway, holder, name)
    dns.publish(f"_gateway-claim.{name}", theirs["recordValue"])
    body = await post(gateway.client, CLAIM, claimant, d=name)
    assert codes(body) == ["CONFLICT"]
    message = body["errors"][0]["message"]
    assert repr(theirs["recordValue"]) in message
    assert (await challenge(gateway, claimant, name))["recordValue"] in message


async def test_a_proven_claim_moves_the_name_and_fails_the_old_row(
    gateway: Gateway, agentmail: FakeAgentMail, dns: LoopbackDns, db: Database
) -> None:
    holder, claimant, name = new_user(), new_user(), new_name()
    agentmail.add_domain(name)
    agentmail.script_verification(name, [("VERIFYING", "ses_dkim_pending")])
    held = await create(gateway, holder, name)
    record = await challenge(gateway, claimant, name)
    dns.publish(record["recordName"], "v=unrelated", record["recordValue"])

    body = await post(gateway.client, CLAIM, claimant, d=name)

    assert "errors" not in body, body
    claimed = body["data"]["claimEmailDomain"]
    assert claimed["userId"] == str(claimant.id)
    assert claimed["domain"] == name
    assert claimed["agentmailDomainId"] == name
    assert claimed["status"] == "VERIFYING"
    old = await fetch(gateway, holder, held["id"])
    assert (old["status"], old["statusReason"]) == ("FAILED", "claimed_by_another_account")
    rows = await holding_rows(db, name)
    assert [(r["user_id"], r["released_at"] is None) for r in rows] == [
        (holder.id, False),
        (claimant.id, True),
    ]
    async with db.connect() as conn:
        queued_for_old = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
            " AND args ->> 'domain_id' = $1",
            held["id"],
        )
    assert queued_for_old == 0
    # The old holder's history says what moved the name, and on whose behalf.
    history = await post(gateway.client, HISTORY, holder, id=held["id"], first=1)
    (latest,) = [e["node"] for e in history["data"]["emailDomain"]["statusHistory"]["edges"]]
    assert (latest["kind"], latest["cause"], latest["toStatus"], latest["reason"]) == (
        "STATUS_CHANGED",
        "CLAIM",
        "FAILED",
        "claimed_by_another_account",
    )
    assert latest["actor"] != "system"

    # The old row never reaches the provider again, and what the provider says is not its.
    verifies = agentmail.calls("POST", f"/v0/domains/{name}/verify")
    for poll in (False, True):
        refused = await verify(gateway, holder, held["id"], poll=poll)
        assert codes(refused) == ["CONFLICT"]
        assert "claimed" in refused["errors"][0]["message"]
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == verifies
    agentmail.set_status(name, "VERIFIED")
    await post(gateway.client, LIST, holder, sync=True)
    old = await fetch(gateway, holder, held["id"])
    assert (old["status"], old["statusReason"]) == ("FAILED", "claimed_by_another_account")
    won = (await verify(gateway, claimant, claimed["id"], poll=True))["data"]["verifyEmailDomain"]
    assert won["status"] == "VERIFIED"

    # The old holder now needs a claim of its own, and its own record proves it.
    assert codes(await post(gateway.client, CREATE, new_user(), domain=name)) == ["CONFLICT"]
    back = await challenge(gateway, holder, name)
    dns.publish(back["recordName"], back["recordValue"])
    again = await post(gateway.client, CLAIM, holder, d=name)
    assert "errors" not in again, again
    assert again["data"]["claimEmailDomain"]["id"] != held["id"]
    rows = await holding_rows(db, name)
    assert [(r["user_id"], r["released_at"] is None) for r in rows] == [
        (claimant.id, False),
        (holder.id, True),
    ]


async def test_the_claimants_delete_cleans_up_though_the_old_row_stays(
    gateway: Gateway, agentmail: FakeAgentMail, dns: LoopbackDns
) -> None:
    holder, claimant, name = new_user(), new_user(), new_name()
    await create(gateway, holder, name)
    record = await challenge(gateway, claimant, name)
    dns.publish(record["recordName"], record["recordValue"])
    claimed = (await post(gateway.client, CLAIM, claimant, d=name))["data"]["claimEmailDomain"]
    body = await post(gateway.client, DELETE, claimant, id=claimed["id"])
    assert body["data"]["deleteEmailDomain"]["success"] is True
    await gateway.run_jobs()
    assert agentmail.calls("DELETE", f"/v0/domains/{name}") == 1


async def test_the_challenge_is_per_account_and_stable(gateway: Gateway) -> None:
    one, two, name = new_user(), new_user(), new_name()
    first = await challenge(gateway, one, name)
    assert first == await challenge(gateway, one, name.upper())
    assert first["recordValue"] != (await challenge(gateway, two, name))["recordValue"]
    assert first["recordValue"] != (await challenge(gateway, one, new_name()))["recordValue"]


async def test_claiming_a_free_name_creates_it(gateway: Gateway, db: Database) -> None:
    user, name = new_user(), new_name()
    body = await post(gateway.client, CLAIM, user, d=name)
    assert "errors" not in body, body
    assert await rows_named(db, user, name) == 1
    same = await post(gateway.client, CLAIM, user, d=name)
    assert same["data"]["claimEmailDomain"]["id"] == body["data"]["claimEmailDomain"]["id"]


async def test_concurrent_creates_of_one_name_leave_one_holder(
    gateway: Gateway, db: Database
) -> None:
    name, users = new_name(), [new_user() for _ in range(6)]
    bodies = await asyncio.gather(
        *(post(gateway.client, CREATE, user, domain=name) for user in users)
    )
    outcomes = sorted("ok" if "errors" not in b else codes(b)[0] for b in bodies)
    assert outcomes == ["CONFLICT"] * 5 + ["ok"]
    assert len(await holding_rows(db, name)) == 1


async def test_the_database_refuses_a_second_holder(db: Database) -> None:
    name = new_name()
    insert = "INSERT INTO email_domains (user_id, domain) VALUES ($1, $2)"
    async with db.connect() as conn:
        await conn.execute(insert, uuid.uuid4(), name)
        with pytest.raises(asyncpg.UniqueViolationError, match="uq_email_domains_holder"):
            await conn.execute(insert, uuid.uuid4(), name)


async def test_a_provider_answer_racing_a_claim_is_not_stored(
    db: Database, settings: Settings
) -> None:
    """A check or verify that read the row before the claim released it writes nothing after."""
    user, name = uuid.uuid4(), new_name()
    writer = StateWriter(db, settings)
    async with db.connect() as conn:
        (row,) = await domains_repo.insert_many(
            conn, user_id=user, rows=[{"domain": name, "status": "verifying"}]
        )
    claimed = await writer.apply(Event(Cause.CLAIMED), domain_id=row.id)
    assert claimed.record is not None
    assert claimed.record.released_at is not None
    verified = Answer(status="VERIFIED", reason=None, records=())
    for event in (
        Event(Cause.POLLER, answer=verified),
        Event(Cause.VERIFY),
        Event(Cause.OVERRIDE, target=Status.PENDING),
    ):
        # `seen` is the row as it was read before the claim.
        await writer.apply(event, domain_id=row.id, owner_id=user, seen=row)
    async with db.connect() as conn:
        after = await domains_repo.get_by_id(conn, domain_id=row.id)
    assert after is not None
    assert (after.status, after.status_reason) == (Status.FAILED, "claimed_by_another_account")
    assert after.verified_at is None


async def test_the_migration_keeps_the_verified_or_oldest_holder(database_url: str) -> None:
    url = make_url(database_url)
    name = f"gql_claims_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(driver_dsn(database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    target = url.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(target), "0003")
        conn = await asyncpg.connect(driver_dsn(target))
        old = datetime.now(UTC) - timedelta(days=3)
        rows: list[tuple[str, str, timedelta]] = [
            ("both.com", "pending", timedelta(0)),
            ("both.com", "verified", timedelta(days=1)),
            ("both.com", "failed", timedelta(days=2)),
            ("oldest.com", "verifying", timedelta(0)),
            ("oldest.com", "pending", timedelta(days=1)),
            ("alone.com", "pending", timedelta(0)),
        ]
        ids: list[Any] = []
        for domain, status, later in rows:
            ids.append(
                await conn.fetchval(
                    "INSERT INTO email_domains (user_id, domain, status, created_at)"
                    " VALUES ($1, $2, $3, $4) RETURNING id",
                    uuid.uuid4(),
                    domain,
                    status,
                    old + later,
                )
            )
        await conn.close()
        await asyncio.to_thread(command.upgrade, alembic_config(target), "head")
        conn = await asyncpg.connect(driver_dsn(target))
        after = {
            r["id"]: (r["status"], r["status_reason"], r["released_at"] is None)
            for r in await conn.fetch("SELECT * FROM email_domains")
        }
        await conn.close()
        released = ("failed", "claimed_by_another_account", False)
        assert [after[i] for i in ids] == [
            released,
            ("verified", None, True),
            released,
            ("verifying", None, True),
            released,
            ("pending", None, True),
        ]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
