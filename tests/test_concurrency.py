"""Many simultaneous overrides and verifications of one domain (sandbox provider)."""

import asyncio
import random
from datetime import datetime
from typing import Any

from gql.app import create_app
from gql.db.engine import Database
from tests.conftest import make_settings, running
from tests.helpers import MakeOwner

VERIFY = "mutation V($id: UUID!) { verifyEmailDomain(id: $id) { status updatedAt } }"
UPDATE = (
    "mutation U($id: UUID!, $s: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $s) { status updatedAt } }"
)


async def test_overrides_and_verifications_race_without_errors(
    database_url: str, make_owner: MakeOwner, db: Database
) -> None:
    app = create_app(make_settings(database_url, sandbox_verify_seconds=3600))
    owner = await make_owner(["pending"])
    domain_id = str(owner.domains[0].id)
    rng = random.Random(7)
    async with running(app) as client:

        async def one(i: int) -> dict[str, Any]:
            if i % 2:
                variables = {"id": domain_id}
                query = VERIFY
            else:
                variables = {"id": domain_id, "s": rng.choice(["PENDING", "FAILED", "VERIFYING"])}
                query = UPDATE
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=owner.headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body
            return next(iter(body["data"].values()))

        answers = await asyncio.gather(*(one(i) for i in range(40)))
    async with db.connect() as conn:
        row = await conn.fetchrow(
            "SELECT status, updated_at FROM email_domains WHERE id = $1", owner.domains[0].id
        )
        queued = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = $1 AND status = 'todo'",
            f"domain:{domain_id}",
        )
    assert row["status"] in {"pending", "failed", "verifying"}
    assert row["updated_at"] >= max(datetime.fromisoformat(a["updatedAt"]) for a in answers)
    assert queued <= 1
