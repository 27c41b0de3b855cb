"""Every HTTP request has a time limit; a hanging provider cannot hold a caller."""

import asyncio
import time
from typing import Any

import pytest

from gql.app import create_app
from tests.conftest import make_settings, running
from tests.helpers import MakeOwner


async def test_a_request_past_its_time_limit_answers_503(
    database_url: str, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(database_url, request_timeout_seconds=0.3))
    owner = await make_owner(["pending"])
    async with running(app) as client:

        async def hang(*args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(30)

        monkeypatch.setattr(app.state.services.domains, "override_status", hang)
        began = time.monotonic()
        response = await client.patch(
            f"/api/email/domains/{owner.domains[0].id}",
            json={"status": "failed"},
            headers=owner.headers,
        )
        assert time.monotonic() - began < 2
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert response.headers["Retry-After"] == "5"
        monkeypatch.undo()
        fine = await client.patch(
            f"/api/email/domains/{owner.domains[0].id}",
            json={"status": "failed"},
            headers=owner.headers,
        )
        assert fine.status_code == 200
