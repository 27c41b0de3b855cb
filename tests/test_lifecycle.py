"""The domain lifecycle through HTTP (POST /graphql) against a fake AgentMail on loopback.

The gateway talks to `FakeAgentMail` through the official SDK; the poller runs on the real job
queue, worked here with `run_worker(wait=False)` (the app's own worker is off in tests). The fake
and the database are shared by the whole module, so every test uses its own random names, and
queued domain jobs are cleared around each test so no test works another's queue.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import idna
import pytest
from starlette.applications import Starlette

from gql.app import create_app
from gql.db.engine import Database
from gql.settings import Settings
from tests.conftest import make_settings, running, session_token
from tests.fakes import FakeAgentMail

FIELDS = """
  id userId domain agentmailDomainId status statusReason verifiedAt updatedAt lastCheckedAt
  dnsRecords { type name value priority }
"""
CREATE = (
    f"mutation Create($domain: String!) {{ createEmailDomain(domain: $domain) {{ {FIELDS} }} }}"
)
VERIFY = (
    "mutation Verify($id: UUID!, $poll: Boolean!) {"
    f" verifyEmailDomain(id: $id, poll: $poll) {{ {FIELDS} }} }}"
)
DELETE = "mutation Delete($id: UUID!) { deleteEmailDomain(id: $id) { id domain success } }"
LIST = (
    "query List($sync: Boolean!) { emailDomains(sync: $sync) {"
    f" totalCount edges {{ node {{ {FIELDS} }} }} }} }}"
)
ONE = f"query One($id: UUID!) {{ emailDomain(id: $id) {{ {FIELDS} }} }}"

TEMPORARY = ("FAILED", "ses_dkim_temporary_failure")


def lifecycle_settings(database_url: str, agentmail_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "agentmail_api_key": "test",
        "agentmail_base_url": agentmail_url,
        "provider_attempts": 3,
        "provider_backoff_seconds": 0,
        "provider_max_backoff_seconds": 1,
        "provider_deadline_seconds": 5,
        "provider_timeout_seconds": 1,
        "poll_schedule_minutes": [0, 0, 0],
        "poll_window_minutes": 60,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@dataclass
class Gateway:
    app: Starlette
    client: httpx.AsyncClient
    db: Database

    async def run_jobs(self) -> None:
        """Work due jobs (poller checks, clean-ups) until none is due.

        One `run_worker(wait=False)` can stop while a running check is still deferring its
        successor (an idle slot found nothing), so it is run again while something is due.
        """
        for _ in range(100):
            await self.app.state.services.jobs.run_worker(wait=False)
            async with self.db.connect() as conn:
                due = await conn.fetchval(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'domains'"
                    " AND status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"
                )
            if not due:
                return
        raise AssertionError("jobs were still due after 100 worker runs")


@dataclass
class User:
    id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {session_token(self.id)}"}


def new_user() -> User:
    return User(uuid.uuid4())


def new_name(prefix: str = "acme") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}.com"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agentmail_server() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as fake:
        yield fake


@pytest.fixture
def agentmail(agentmail_server: FakeAgentMail) -> FakeAgentMail:
    agentmail_server.reset()
    return agentmail_server


@pytest.fixture(scope="module")
async def gateway(
    database_url: str, agentmail_server: FakeAgentMail, db: Database
) -> AsyncIterator[Gateway]:
    app = create_app(lifecycle_settings(database_url, agentmail_server.url))
    async with running(app) as client:
        yield Gateway(app, client, db)


async def _drop_domain_jobs(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute(
            "DELETE FROM procrastinate_jobs WHERE status = 'todo'"
            " AND task_name IN ('check_domain', 'cleanup_domain')"
        )
        # The sweeper would queue checks again for domains other tests left verifying.
        await conn.execute(
            "UPDATE email_domains SET status = 'failed', status_reason = 'test_isolation'"
            " WHERE status = 'verifying'"
        )


@pytest.fixture(autouse=True)
async def isolated_queue(db: Database) -> AsyncIterator[None]:
    """Each test works only its own jobs (another test's poller chain never runs here)."""
    await _drop_domain_jobs(db)
    yield
    await _drop_domain_jobs(db)


# -- helpers ------------------------------------------------------------------------------------


async def post(client: httpx.AsyncClient, query: str, user: User, **variables: Any) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def create(gw: Gateway, user: User, name: str) -> dict[str, Any]:
    body = await post(gw.client, CREATE, user, domain=name)
    assert "errors" not in body, body
    node: dict[str, Any] = body["data"]["createEmailDomain"]
    return node


async def verify(gw: Gateway, user: User, domain_id: str, *, poll: bool) -> Any:
    return await post(gw.client, VERIFY, user, id=domain_id, poll=poll)


async def fetch(gw: Gateway, user: User, domain_id: str) -> Any:
    body = await post(gw.client, ONE, user, id=domain_id)
    assert "errors" not in body, body
    return body["data"]["emailDomain"]


async def listed(gw: Gateway, user: User, *, sync: bool) -> tuple[dict[str, Any], Any]:
    body = await post(gw.client, LIST, user, sync=sync)
    assert "errors" not in body, body
    nodes = {e["node"]["id"]: e["node"] for e in body["data"]["emailDomains"]["edges"]}
    return nodes, body.get("extensions")


async def stored(db: Database, domain_id: str) -> asyncpg.Record | None:
    async with db.connect() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM email_domains WHERE id = $1", uuid.UUID(domain_id)
        )
    return row


async def rows_named(db: Database, user: User, name: str) -> int:
    async with db.connect() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM email_domains WHERE user_id = $1 AND domain = $2", user.id, name
        )
    return count


async def queued(db: Database, task: str, arg: str, value: str) -> int:
    """How many `task` jobs wait in the queue with `args[arg] == value`."""
    async with db.connect() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs"
            " WHERE task_name = $1 AND status = 'todo' AND args ->> $2 = $3",
            task,
            arg,
            value,
        )
    return count


def seed_at_provider(fake: FakeAgentMail, name: str, steps: list[Any]) -> None:
    """The name already exists at AgentMail, and its next verification walks `steps`."""
    fake.add_domain(name)
    fake.script_verification(name, steps)


def created_bodies(fake: FakeAgentMail, name: str) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests_to("POST", "/v0/domains") if r.json["domain"] == name]


# -- create -------------------------------------------------------------------------------------


async def test_create_answers_verified_when_the_provider_verifies_at_once(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    seed_at_provider(agentmail, name, ["VERIFIED"])
    node = await create(gateway, user, name)
    assert node["status"] == "VERIFIED"
    assert node["verifiedAt"] is not None
    assert node["statusReason"] is None
    assert node["domain"] == name
    assert node["userId"] == str(user.id)
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0
    row = await stored(db, node["id"])
    assert row is not None
    assert row["status"] == "verified"


async def test_create_answers_verifying_stores_the_records_and_queues_a_check(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    response = await gateway.client.post(
        "/graphql", json={"query": CREATE, "variables": {"domain": name}}, headers=user.headers
    )
    assert "x-gateway-sandbox" not in response.headers
    node = response.json()["data"]["createEmailDomain"]
    assert node["status"] == "VERIFYING"
    assert node["agentmailDomainId"] == name
    live = agentmail.domain(name)
    assert live is not None
    expected = [
        {"type": r["type"], "name": r["name"], "value": r["value"], "priority": r.get("priority")}
        for r in live["records"]
    ]
    assert node["dnsRecords"] == expected
    assert {"type": "CNAME", "name": f"agm._domainkey.{name}"} in [
        {"type": r["type"], "name": r["name"]} for r in node["dnsRecords"]
    ]
    row = await stored(db, node["id"])
    assert row is not None
    assert row["status"] == "verifying"
    assert row["agentmail_domain_id"] == name
    assert row["verification_started_at"] is not None
    # Stored with each record's status as the provider reported it (the API shows it apart).
    assert row["dns_records"] == [
        {**e, "status": r["status"]} for e, r in zip(expected, live["records"], strict=True)
    ]
    (body,) = created_bodies(agentmail, name)
    assert body["client_id"]
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1


async def test_create_answers_pending_when_the_provider_will_not_start_a_verification(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    """PENDING means "publish the records, then verifyEmailDomain": nothing is running."""
    user, name = new_user(), new_name()
    agentmail.fail_next(
        1,
        400,
        method="POST",
        path=f"/v0/domains/{name}/verify",
        body={
            "name": "ValidationError",
            "code": "validation_error",
            "message": "Publish the domain's DNS records before verifying it.",
        },
    )
    body = await post(gateway.client, CREATE, user, domain=name)
    assert "errors" not in body, body
    node = body["data"]["createEmailDomain"]
    assert node["status"] == "PENDING"
    assert node["dnsRecords"]
    row = await stored(db, node["id"])
    assert row is not None
    assert row["status"] == "pending"
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0


async def test_create_normalises_the_name(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, f"HTTPS://Mail.{name.upper()}:443/setup?x=1")
    assert node["domain"] == f"mail.{name}"
    assert [b["domain"] for b in created_bodies(agentmail, f"mail.{name}")] == [f"mail.{name}"]

    unicode_name = f"bücher-{uuid.uuid4().hex[:8]}.de"
    node = await create(gateway, user, unicode_name.upper())
    assert node["domain"] == idna.encode(unicode_name, uts46=True).decode()
    assert node["domain"].startswith("xn--")
    assert agentmail.domain(node["domain"]) is not None


async def test_create_twice_returns_the_same_domain_and_creates_once_at_the_provider(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    first = await create(gateway, user, name)
    again = await create(gateway, user, name.upper())
    assert again["id"] == first["id"]
    assert len(created_bodies(agentmail, name)) == 1
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1
    assert await rows_named(db, user, name) == 1


async def test_create_retried_after_a_lost_answer_converges_on_one_provider_domain(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    """The first POST is processed by AgentMail but answers too late: the retry replays it."""
    user, name = new_user(), new_name()
    agentmail.delay_next(1, 1.5, method="POST", path="/v0/domains")
    started = time.monotonic()
    node = await create(gateway, user, name)
    bodies = created_bodies(agentmail, name)
    assert len(bodies) == 2
    assert bodies[0]["client_id"] == bodies[1]["client_id"]
    await asyncio.sleep(max(0.0, started + 1.6 - time.monotonic()))  # the slow POST lands
    assert agentmail.domain_ids().count(name) == 1
    live = agentmail.domain(name)
    assert live is not None
    assert live["client_id"] == bodies[0]["client_id"]  # created by our request, then replayed
    assert node["agentmailDomainId"] == name
    assert await rows_named(db, user, name) == 1


async def test_create_5xx_exhausted_is_provider_unavailable_and_writes_no_row(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    agentmail.fail_next(3, 503, method="POST", path="/v0/domains")
    body = await post(gateway.client, CREATE, user, domain=name)
    assert codes(body) == ["PROVIDER_UNAVAILABLE"]
    assert body["errors"][0]["extensions"]["retryAfter"] > 0
    assert body["data"] is None
    assert len(created_bodies(agentmail, name)) == 3  # bounded: provider_attempts
    assert await rows_named(db, user, name) == 0
    assert agentmail.domain(name) is None

    node = await create(gateway, user, name)  # the client retries later
    assert node["status"] == "VERIFYING"
    bodies = created_bodies(agentmail, name)
    assert len({b["client_id"] for b in bodies}) == 1  # stable across calls
    live = agentmail.domain(name)
    assert live is not None
    assert live["client_id"] == bodies[0]["client_id"]
    assert await rows_named(db, user, name) == 1


async def test_create_honours_retry_after_then_succeeds(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    agentmail.rate_limit_next(1, retry_after=1, method="POST", path="/v0/domains")
    started = time.monotonic()
    node = await create(gateway, user, name)
    elapsed = time.monotonic() - started
    assert node["status"] == "VERIFYING"
    assert len(created_bodies(agentmail, name)) == 2
    assert elapsed >= 0.9, f"retried after {elapsed:.2f}s, before Retry-After: 1"
    assert await rows_named(db, user, name) == 1


async def test_a_hanging_provider_is_unavailable_within_a_bounded_time(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    agentmail.delay_next(3, 2.5, method="POST", path="/v0/domains")
    started = time.monotonic()
    body = await post(gateway.client, CREATE, user, domain=name)
    elapsed = time.monotonic() - started
    assert codes(body) == ["PROVIDER_UNAVAILABLE"]
    # 3 attempts x 1 s timeout + at most 1 s between attempts, and a 5 s deadline.
    assert elapsed < 6.5, f"took {elapsed:.1f}s"
    assert len(created_bodies(agentmail, name)) == 3  # every attempt timed out
    assert await rows_named(db, user, name) == 0


async def test_a_create_that_fails_at_the_provider_leaves_no_row_behind(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    """The verify step of a create is unavailable: the caller must not get an error while a row
    was written behind its back (either no row and an error, or the row and no error)."""
    user, name = new_user(), new_name()
    agentmail.fail_next(3, 503, method="POST", path=f"/v0/domains/{name}/verify")
    body = await post(gateway.client, CREATE, user, domain=name)
    if body.get("errors"):
        assert codes(body) == ["PROVIDER_UNAVAILABLE"]
        assert await rows_named(db, user, name) == 0
    else:
        node = body["data"]["createEmailDomain"]
        assert node["status"] == "PENDING"
        row = await stored(db, node["id"])
        assert row is not None
        assert row["status"] == "pending"


async def test_conflict_when_another_user_verified_the_name(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    first, second, name = new_user(), new_user(), new_name()
    seed_at_provider(agentmail, name, ["VERIFIED"])
    owner_node = await create(gateway, first, name)
    assert owner_node["status"] == "VERIFIED"
    posts = len(agentmail.requests_to("POST", "/v0/domains"))

    body = await post(gateway.client, CREATE, second, domain=name.upper())
    assert codes(body) == ["CONFLICT"]
    assert name in body["errors"][0]["message"]
    assert await rows_named(db, second, name) == 0
    assert len(agentmail.requests_to("POST", "/v0/domains")) == posts
    kept = await fetch(gateway, first, owner_node["id"])
    assert kept["status"] == "VERIFIED"
    assert kept["updatedAt"] == owner_node["updatedAt"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "empty"),
        ("localhost", "not a registrable domain"),
        ("https://localhost:8080", "not a registrable domain"),
        ("com", "not a registrable domain"),
        ("co.uk", "not a registrable domain"),
        ("acme.notatld", "not a registrable domain"),
        ("acme..com", "not a valid host name"),
        ("-acme.com", "not a valid host name"),
        ("acme_mail.com", "not a valid host name"),
    ],
)
async def test_invalid_names_are_bad_user_input(
    gateway: Gateway, agentmail: FakeAgentMail, raw: str, says: str
) -> None:
    body = await post(gateway.client, CREATE, new_user(), domain=raw)
    assert codes(body) == ["BAD_USER_INPUT"]
    message = body["errors"][0]["message"]
    assert says in message
    assert "acme.com" in message  # the message shows a valid example
    assert agentmail.requests == []  # refused before the provider is asked


# -- verify: trigger and poll -------------------------------------------------------------------


async def test_trigger_marks_verifying_calls_verify_and_stores_the_live_status(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    agentmail.set_status(name, "FAILED", "ses_dkim_failed")
    failed = (await verify(gateway, user, node["id"], poll=True))["data"]["verifyEmailDomain"]
    assert (failed["status"], failed["statusReason"]) == ("FAILED", "ses_dkim_failed")
    await gateway.run_jobs()  # the chain from the create ends on a failed domain
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0

    agentmail.script_verification(name, [("VERIFYING", "ses_dkim_pending")])
    body = await verify(gateway, user, node["id"], poll=False)
    assert "errors" not in body, body
    again = body["data"]["verifyEmailDomain"]
    assert again["status"] == "VERIFYING"
    assert again["statusReason"] == "ses_dkim_pending"
    assert again["lastCheckedAt"] is not None
    assert datetime.fromisoformat(again["updatedAt"]) > datetime.fromisoformat(failed["updatedAt"])
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 2
    row = await stored(db, node["id"])
    assert row is not None
    assert (row["status"], row["status_reason"]) == ("verifying", "ses_dkim_pending")
    # The trigger opened a new polling window.
    assert row["verification_started_at"] > datetime.fromisoformat(failed["updatedAt"])
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1


async def test_poll_only_reads_and_never_calls_verify(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    agentmail.set_status(name, "VERIFIED")
    body = await verify(gateway, user, node["id"], poll=True)
    assert "errors" not in body, body
    polled = body["data"]["verifyEmailDomain"]
    assert polled["status"] == "VERIFIED"
    assert polled["verifiedAt"] is not None
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1  # the create's only

    agentmail.set_status(name, "INVALID", "dns_records_invalid")
    pending = (await verify(gateway, user, node["id"], poll=True))["data"]["verifyEmailDomain"]
    # Outside a running verification INVALID means: fix the records, then verify.
    assert pending["status"] == "PENDING"
    assert pending["statusReason"] == "dns_records_invalid"
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1
    assert agentmail.calls("POST", "/v0/domains/*/verify") == 1


async def test_repeated_triggers_leave_exactly_one_queued_check(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user = new_user()
    one, other = await create(gateway, user, new_name()), await create(gateway, user, new_name())
    for _ in range(3):
        body = await verify(gateway, user, one["id"], poll=False)
        assert "errors" not in body, body
    bodies = await asyncio.gather(*(verify(gateway, user, one["id"], poll=False) for _ in range(3)))
    assert all("errors" not in b for b in bodies), bodies
    assert await queued(db, "check_domain", "domain_id", one["id"]) == 1
    assert await queued(db, "check_domain", "domain_id", other["id"]) == 1


# -- the poller ---------------------------------------------------------------------------------


async def test_poller_moves_verifying_to_verified(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    pending = ("VERIFYING", "ses_dkim_pending")
    seed_at_provider(agentmail, name, [pending, pending, pending, "VERIFIED"])
    node = await create(gateway, user, name)
    assert (node["status"], node["statusReason"]) == ("VERIFYING", "ses_dkim_pending")
    gets = agentmail.calls("GET", f"/v0/domains/{name}")

    await gateway.run_jobs()
    done = await fetch(gateway, user, node["id"])
    assert done["status"] == "VERIFIED"
    assert done["verifiedAt"] is not None
    assert done["statusReason"] is None
    assert agentmail.calls("GET", f"/v0/domains/{name}") - gets == 3  # one per poller step
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == 1  # polled, not re-triggered
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0


async def test_poller_fails_a_domain_on_a_terminal_failure(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    agentmail.set_status(name, "FAILED", "ses_dkim_failed")
    await gateway.run_jobs()
    done = await fetch(gateway, user, node["id"])
    assert (done["status"], done["statusReason"]) == ("FAILED", "ses_dkim_failed")
    assert done["verifiedAt"] is None
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0


async def test_poller_keeps_verifying_through_a_temporary_failure(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    seed_at_provider(agentmail, name, [TEMPORARY, TEMPORARY, TEMPORARY, "VERIFIED"])
    node = await create(gateway, user, name)
    assert node["status"] == "VERIFYING"
    assert node["statusReason"] == "ses_dkim_temporary_failure"
    gets = agentmail.calls("GET", f"/v0/domains/{name}")

    await gateway.run_jobs()
    done = await fetch(gateway, user, node["id"])
    # Had a temporary failure stopped the poller, the domain would be FAILED (or still
    # VERIFYING with the provider never asked again).
    assert done["status"] == "VERIFIED"
    assert agentmail.calls("GET", f"/v0/domains/{name}") - gets == 3


async def test_poller_fails_with_verification_timeout_when_the_window_closes(
    database_url: str, agentmail: FakeAgentMail, db: Database
) -> None:
    app = create_app(lifecycle_settings(database_url, agentmail.url, poll_window_minutes=0.001))
    async with running(app) as client:
        gw = Gateway(app, client, db)
        user, name = new_user(), new_name()
        node = await create(gw, user, name)
        assert node["status"] == "VERIFYING"
        await asyncio.sleep(0.1)  # the 60 ms window closes
        await gw.run_jobs()
        done = await fetch(gw, user, node["id"])
    assert (done["status"], done["statusReason"]) == ("FAILED", "verification_timeout")
    assert done["verifiedAt"] is None
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0
    live = agentmail.domain(name)
    assert live is not None
    assert live["status"] == "VERIFYING"  # the provider never said failed: the window did


# -- sync ---------------------------------------------------------------------------------------


async def test_sync_never_demotes_a_verified_domain_on_transient_answers(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    seed_at_provider(agentmail, name, ["VERIFIED"])
    node = await create(gateway, user, name)
    assert node["status"] == "VERIFIED"
    before = await stored(db, node["id"])
    assert before is not None

    agentmail.fail_next(3, 503, method="GET", path=f"/v0/domains/{name}")
    nodes, extensions = await listed(gateway, user, sync=True)
    assert nodes[node["id"]]["status"] == "VERIFIED"
    assert extensions["sync"] == {"partial": True, "failedIds": [node["id"]]}

    for status, reason in [TEMPORARY, ("FAILED", "ses_mail_from_temporary_failure")]:
        agentmail.set_status(name, status, reason)
        nodes, extensions = await listed(gateway, user, sync=True)
        assert nodes[node["id"]]["status"] == "VERIFIED", reason
        assert extensions["sync"] == {"partial": False, "failedIds": []}

    agentmail.set_status(name, "VERIFYING", "ses_dkim_pending")  # the checker flickers
    nodes, _ = await listed(gateway, user, sync=True)
    assert nodes[node["id"]]["status"] == "VERIFIED"
    after = await stored(db, node["id"])
    assert after is not None
    assert after["status"] == "verified"
    assert after["verified_at"] == before["verified_at"]


async def test_sync_partial_keeps_the_cached_status_of_the_failed_domain(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, broken, fine = new_user(), new_name(), new_name()
    a = await create(gateway, user, broken)
    b = await create(gateway, user, fine)
    agentmail.set_status(broken, "FAILED", "ses_dkim_failed")  # never seen: its GET fails
    agentmail.set_status(fine, "VERIFIED")
    agentmail.fail_next(3, 503, method="GET", path=f"/v0/domains/{broken}")

    nodes, extensions = await listed(gateway, user, sync=True)
    assert set(nodes) == {a["id"], b["id"]}
    assert nodes[a["id"]]["status"] == "VERIFYING"
    assert nodes[b["id"]]["status"] == "VERIFIED"
    assert extensions["sync"] == {"partial": True, "failedIds": [a["id"]]}
    row = await stored(db, a["id"])
    assert row is not None
    assert row["status"] == "verifying"

    gets = agentmail.calls("GET", "/v0/domains/*")
    nodes, extensions = await listed(gateway, user, sync=False)
    assert nodes[a["id"]]["status"] == "VERIFYING"
    assert not (extensions or {}).get("sync")
    assert agentmail.calls("GET", "/v0/domains/*") == gets  # no sync, no provider call

    nodes, extensions = await listed(gateway, user, sync=True)
    assert nodes[a["id"]]["status"] == "FAILED"
    assert extensions["sync"] == {"partial": False, "failedIds": []}


# -- delete -------------------------------------------------------------------------------------


async def test_delete_removes_the_row_cancels_checks_and_cleans_up_in_the_background(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1

    body = await post(gateway.client, DELETE, user, id=node["id"])
    assert body == {
        "data": {"deleteEmailDomain": {"id": node["id"], "domain": name, "success": True}}
    }
    assert await stored(db, node["id"]) is None
    assert await fetch(gateway, user, node["id"]) is None
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0
    assert await queued(db, "cleanup_domain", "provider_domain_id", name) == 1
    assert agentmail.domain(name) is not None  # clean-up is background work

    await gateway.run_jobs()
    assert agentmail.domain(name) is None
    assert agentmail.calls("DELETE", f"/v0/domains/{name}") == 1
    assert await queued(db, "cleanup_domain", "provider_domain_id", name) == 0

    again = await post(gateway.client, DELETE, user, id=node["id"])
    assert codes(again) == ["NOT_FOUND"]
    assert codes(await verify(gateway, user, node["id"], poll=False)) == ["NOT_FOUND"]
    assert codes(await verify(gateway, user, node["id"], poll=True)) == ["NOT_FOUND"]


# -- ownership ----------------------------------------------------------------------------------


async def test_nobody_verifies_or_polls_another_users_domain(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    owner, intruder, name = new_user(), new_user(), new_name()
    node = await create(gateway, owner, name)
    before = await stored(db, node["id"])
    verifies, gets = (
        agentmail.calls("POST", f"/v0/domains/{name}/verify"),
        agentmail.calls("GET", f"/v0/domains/{name}"),
    )
    agentmail.set_status(name, "VERIFIED")

    for poll in (False, True):
        body = await verify(gateway, intruder, node["id"], poll=poll)
        assert codes(body) == ["NOT_FOUND"]
        assert body["data"] is None
    assert await stored(db, node["id"]) == before
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == verifies
    assert agentmail.calls("GET", f"/v0/domains/{name}") == gets
    assert (await fetch(gateway, owner, node["id"]))["status"] == "VERIFYING"


async def test_sync_lists_and_refreshes_only_the_callers_domains(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    owner, other = new_user(), new_user()
    mine, theirs = new_name(), new_name()
    my_node = await create(gateway, owner, mine)
    their_node = await create(gateway, other, theirs)
    before = await stored(db, their_node["id"])
    agentmail.set_status(theirs, "VERIFIED")
    gets = agentmail.calls("GET", f"/v0/domains/{theirs}")

    nodes, extensions = await listed(gateway, owner, sync=True)
    assert set(nodes) == {my_node["id"]}
    assert extensions["sync"] == {"partial": False, "failedIds": []}
    assert agentmail.calls("GET", f"/v0/domains/{theirs}") == gets
    assert await stored(db, their_node["id"]) == before


async def test_nobody_deletes_another_users_domain(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    owner, intruder, name = new_user(), new_user(), new_name()
    node = await create(gateway, owner, name)
    before = await stored(db, node["id"])

    body = await post(gateway.client, DELETE, intruder, id=node["id"])
    assert codes(body) == ["NOT_FOUND"]
    assert await stored(db, node["id"]) == before
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1
    assert await queued(db, "cleanup_domain", "provider_domain_id", name) == 0
    agentmail.set_status(name, "FAILED", "ses_dkim_failed")  # lets the poller chain end
    await gateway.run_jobs()
    assert agentmail.calls("DELETE", f"/v0/domains/{name}") == 0
    assert agentmail.domain(name) is not None


# -- sandbox mode -------------------------------------------------------------------------------


async def test_sandbox_fails_a_fail_domain_through_the_poller(
    database_url: str, db: Database
) -> None:
    app = create_app(make_settings(database_url, sandbox_verify_seconds=0.2))
    user, name = new_user(), new_name("fail")
    async with running(app) as client:
        gw = Gateway(app, client, db)
        response = await client.post(
            "/graphql", json={"query": CREATE, "variables": {"domain": name}}, headers=user.headers
        )
        assert response.status_code == 200
        assert "simulated" in response.headers["x-gateway-sandbox"]
        node = response.json()["data"]["createEmailDomain"]
        assert node["status"] == "VERIFYING"
        assert any(r["name"] == f"agm._domainkey.{name}" for r in node["dnsRecords"])
        assert await queued(db, "check_domain", "domain_id", node["id"]) == 1

        await gw.run_jobs()
        done = await fetch(gw, user, node["id"])
    assert (done["status"], done["statusReason"]) == ("FAILED", "ses_dkim_failed")
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0
