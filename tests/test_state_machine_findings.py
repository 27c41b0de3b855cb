"""The lifecycle findings of issue 7, each through HTTP against the fake AgentMail (or real
processes where the finding is about processes).

2. No domain is left `verifying` with nothing queued: overrides to verifying queue a check, and
   a sync never moves pending or failed domains to verifying.
4. No writes that are not changes: a verified domain polled again keeps verifiedAt/updatedAt,
   and never carries a pending reason.
5. The poller holds no transaction across the provider call and works with one connection.
6. Sync is partial for any per-domain failure; a provider refusing our credentials is
   PROVIDER_MISCONFIGURED, never BAD_USER_INPUT.
7. Delete is one transaction: the row, its checks and the clean-up job go together or not at all.
"""

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from gql.app import create_app
from gql.db.engine import Database
from tests import test_lifecycle as lifecycle
from tests.conftest import make_settings, running
from tests.fakes import FakeAgentMail
from tests.test_lifecycle import (
    CREATE,
    DELETE,
    ONE,
    Gateway,
    User,
    codes,
    create,
    fetch,
    lifecycle_settings,
    listed,
    new_name,
    new_user,
    post,
    queued,
    seed_at_provider,
    stored,
    verify,
)

# The lifecycle module's fake AgentMail, gateway and queue isolation, shared here.
agentmail_server = lifecycle.agentmail_server
agentmail = lifecycle.agentmail
gateway = lifecycle.gateway
isolated_queue = lifecycle.isolated_queue

OVERRIDE = (
    "mutation O($id: UUID!, $s: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $s) { id status statusReason updatedAt } }"
)


async def settle(gw: Gateway, agentmail: FakeAgentMail, user: User, name: str) -> dict[str, Any]:
    """A created domain that the provider failed terminally, with no check left."""
    node = await create(gw, user, name)
    agentmail.set_status(name, "FAILED", "ses_dkim_failed")
    await gw.run_jobs()
    done: dict[str, Any] = await fetch(gw, user, node["id"])
    assert (done["status"], done["statusReason"]) == ("FAILED", "ses_dkim_failed")
    return done


# -- 2. nothing left verifying without a check -----------------------------------------------


@pytest.mark.parametrize("via", ["rest", "graphql"])
async def test_an_override_to_verifying_queues_a_check_and_one_away_drops_it(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database, via: str
) -> None:
    user, name = new_user(), new_name()
    node = await settle(gateway, agentmail, user, name)
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0

    async def override(status: str) -> str:
        if via == "rest":
            response = await gateway.client.patch(
                f"/api/email/domains/{node['id']}", json={"status": status}, headers=user.headers
            )
            assert response.status_code == 200, response.text
            return str(response.json()["domain"]["status"])
        body = await post(gateway.client, OVERRIDE, user, id=node["id"], s=status.upper())
        assert "errors" not in body, body
        return str(body["data"]["updateEmailDomainStatus"]["status"]).lower()

    assert await override("verifying") == "verifying"
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1
    row = await stored(db, node["id"])
    assert row is not None
    assert row["verification_started_at"] > datetime.fromisoformat(node["updatedAt"])  # new window

    agentmail.set_status(name, "VERIFIED")
    await gateway.run_jobs()  # the queued check settles it
    assert (await fetch(gateway, user, node["id"]))["status"] == "VERIFIED"

    assert await override("verifying") == "verifying"
    assert await override("failed") == "failed"
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0


async def test_sync_never_moves_pending_or_failed_domains_to_verifying(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user = new_user()
    failed_name, pending_name = new_name("fail"), new_name()
    failed = await settle(gateway, agentmail, user, failed_name)
    pending = await create(gateway, user, pending_name)
    body = await post(gateway.client, OVERRIDE, user, id=pending["id"], s="PENDING")
    assert "errors" not in body, body
    # The provider's checker restarted (a restart of the sandbox looks the same).
    agentmail.set_status(failed_name, "VERIFYING", "ses_dkim_pending")
    agentmail.set_status(pending_name, "PENDING", "ses_dkim_pending")

    nodes, extensions = await listed(gateway, user, sync=True)
    assert extensions["sync"] == {"partial": False, "failedIds": []}
    assert (nodes[failed["id"]]["status"], nodes[failed["id"]]["statusReason"]) == (
        "FAILED",
        "ses_dkim_failed",
    )
    assert nodes[pending["id"]]["status"] == "PENDING"
    for domain_id in (failed["id"], pending["id"]):
        assert await queued(db, "check_domain", "domain_id", domain_id) == 0
    async with db.connect() as conn:
        stuck = await conn.fetchval(
            "SELECT count(*) FROM email_domains WHERE user_id = $1 AND status = 'verifying'",
            user.id,
        )
    assert stuck == 0


async def test_sandbox_restart_keeps_a_failed_domain_failed(
    database_url: str, db: Database
) -> None:
    """fail-demo.com failed with ses_dkim_failed; a new process's sandbox has never seen it."""
    user, name = new_user(), new_name("fail")
    app = create_app(make_settings(database_url, sandbox_verify_seconds=0))
    async with running(app) as client:
        gw = Gateway(app, client, db)
        node = await create(gw, user, name)
        await gw.run_jobs()
        assert (await fetch(gw, user, node["id"]))["status"] == "FAILED"
    restarted = create_app(make_settings(database_url, sandbox_verify_seconds=3600))
    async with running(restarted) as client:
        gw = Gateway(restarted, client, db)
        nodes, _ = await listed(gw, user, sync=True)
    assert (nodes[node["id"]]["status"], nodes[node["id"]]["statusReason"]) == (
        "FAILED",
        "ses_dkim_failed",
    )


# -- 4. writes that are not changes ------------------------------------------------------------


async def test_polls_and_syncs_of_a_verified_domain_do_not_restamp_it(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    seed_at_provider(agentmail, name, ["VERIFIED"])
    node = await create(gateway, user, name)
    assert node["status"] == "VERIFIED"
    for _ in range(2):
        polled = (await verify(gateway, user, node["id"], poll=True))["data"]["verifyEmailDomain"]
        assert (polled["verifiedAt"], polled["updatedAt"]) == (
            node["verifiedAt"],
            node["updatedAt"],
        )
        nodes, _ = await listed(gateway, user, sync=True)
        assert nodes[node["id"]]["verifiedAt"] == node["verifiedAt"]
        assert nodes[node["id"]]["updatedAt"] == node["updatedAt"]

    agentmail.set_status(name, "VERIFYING", "ses_dkim_pending")  # the checker flickers
    polled = (await verify(gateway, user, node["id"], poll=True))["data"]["verifyEmailDomain"]
    assert (polled["status"], polled["statusReason"]) == ("VERIFIED", None)
    assert polled["updatedAt"] == node["updatedAt"]
    row = await stored(db, node["id"])
    assert row is not None
    assert (row["status"], row["status_reason"]) == ("verified", None)


# -- 5. the poller's transactions ----------------------------------------------------------------


async def test_the_poller_works_with_one_pooled_connection_and_no_open_transaction(
    database_url: str, agentmail: FakeAgentMail, db: Database
) -> None:
    settings = lifecycle_settings(
        database_url, agentmail.url, db_pool_size=1, db_pool_timeout=1, provider_timeout_seconds=3
    )
    app = create_app(settings)
    async with running(app) as client:
        gw = Gateway(app, client, db)
        user, name = new_user(), new_name()
        node = await create(gw, user, name)
        path = f"/v0/domains/{name}"
        agentmail.set_status(name, "VERIFIED")
        agentmail.delay_next(1, 1.0, method="GET", path=path)
        run = asyncio.create_task(gw.run_jobs())
        # While the check waits for the provider, no connection of ours sits in a transaction
        # (the old poller kept one open across the call, and needed a second to write).
        idle_in_transaction = 0
        async with asyncio.timeout(10):
            while agentmail.calls("GET", path) < 2 or not run.done():
                async with db.connect() as conn:
                    idle_in_transaction = max(
                        idle_in_transaction,
                        await conn.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                            " current_database() AND state = 'idle in transaction'"
                            " AND application_name = 'gql-gateway'"
                            # held across something slow: the 1 s provider call
                            " AND xact_start < now() - interval '0.5 seconds'"
                        ),
                    )
                if run.done():
                    break
                await asyncio.sleep(0.05)
        await run
        done = await fetch(gw, user, node["id"])
    assert done["status"] == "VERIFIED"
    assert idle_in_transaction == 0


# -- 6. errors that blame the right party --------------------------------------------------------


async def test_sync_is_partial_when_the_provider_refuses_one_domain(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, refused, fine = new_user(), new_name(), new_name()
    a = await create(gateway, user, refused)
    b = await create(gateway, user, fine)
    agentmail.set_status(fine, "VERIFIED")
    agentmail.fail_next(1, 403, method="GET", path=f"/v0/domains/{refused}")
    body = await post(
        gateway.client, "query { emailDomains(sync: true) { edges { node { id status } } } }", user
    )
    assert "errors" not in body, body
    nodes = {e["node"]["id"]: e["node"]["status"] for e in body["data"]["emailDomains"]["edges"]}
    assert nodes == {a["id"]: "VERIFYING", b["id"]: "VERIFIED"}
    assert body["extensions"]["sync"] == {"partial": True, "failedIds": [a["id"]]}


@pytest.mark.parametrize("status", [401, 403])
async def test_a_provider_refusing_our_credentials_is_provider_misconfigured(
    gateway: Gateway,
    agentmail: FakeAgentMail,
    db: Database,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    agentmail.fail_next(1, status, method="POST", path=f"/v0/domains/{name}/verify")
    body = await verify(gateway, user, node["id"], poll=False)
    assert codes(body) == ["PROVIDER_MISCONFIGURED"]
    assert "operator" in body["errors"][0]["message"]
    assert any(
        r.levelname == "ERROR" and "AGENTMAIL_API_KEY" in r.getMessage() for r in caplog.records
    )
    # The trigger was not refused by the provider's verdict: the domain stays verifying,
    # with its check queued.
    row = await stored(db, node["id"])
    assert row is not None
    assert row["status"] == "verifying"
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1

    agentmail.fail_next(1, status, method="POST", path="/v0/domains")
    body = await post(gateway.client, CREATE, user, domain=new_name())
    assert codes(body) == ["PROVIDER_MISCONFIGURED"]


# -- 7. delete is one transaction -------------------------------------------------------------


async def test_a_delete_whose_clean_up_cannot_be_queued_deletes_nothing(
    gateway: Gateway, agentmail: FakeAgentMail, db: Database
) -> None:
    user, name = new_user(), new_name()
    node = await create(gateway, user, name)
    suffix = uuid.uuid4().hex[:8]
    async with db.connect() as conn:
        await conn.execute(
            f"CREATE FUNCTION refuse_{suffix}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.args->>'provider_domain_id' = '{name}' THEN"
            "  RAISE EXCEPTION 'queue unavailable'; END IF; RETURN NEW; END $$;"
            f"CREATE TRIGGER refuse_{suffix} BEFORE INSERT ON procrastinate_jobs"
            f" FOR EACH ROW EXECUTE FUNCTION refuse_{suffix}()"
        )
    try:
        body = await post(gateway.client, DELETE, user, id=node["id"])
    finally:
        async with db.connect() as conn:
            await conn.execute(
                f"DROP TRIGGER refuse_{suffix} ON procrastinate_jobs;"
                f" DROP FUNCTION refuse_{suffix}()"
            )
    assert body["data"] is None
    # Nothing half-done: the row and its check are still there, nothing is orphaned.
    assert await stored(db, node["id"]) is not None
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 1

    body = await post(gateway.client, DELETE, user, id=node["id"])  # the queue is back
    assert body["data"]["deleteEmailDomain"]["success"] is True
    assert await stored(db, node["id"]) is None
    assert await queued(db, "check_domain", "domain_id", node["id"]) == 0
    assert await queued(db, "cleanup_domain", "provider_domain_id", name) == 1
    assert (await post(gateway.client, ONE, user, id=node["id"]))["data"]["emailDomain"] is None


# -- a limit on the number of domains per account (issue 8) -----------------------------------


async def test_an_account_cannot_add_more_domains_than_the_limit(
    database_url: str, agentmail: FakeAgentMail, db: Database
) -> None:
    app = create_app(lifecycle_settings(database_url, agentmail.url, max_domains_per_account=2))
    user, third = new_user(), new_name()
    async with running(app) as client:
        gw = Gateway(app, client, db)
        first = await create(gw, user, new_name())
        await create(gw, user, new_name())
        body = await post(client, CREATE, user, domain=third)
        assert codes(body) == ["CONFLICT"]
        message = body["errors"][0]["message"]
        assert "MAX_DOMAINS_PER_ACCOUNT = 2" in message
        assert "Delete a domain" in message
        assert agentmail.domain(third) is None  # refused before the provider is asked
        assert (await create(gw, user, first["domain"]))["id"] == first["id"]  # same name: fine
        await post(client, DELETE, user, id=first["id"])
        assert (await create(gw, user, third))["domain"] == third
