"""One request id per request: the caller's `X-Request-ID` when it is safe, else a new one;
returned on every response, cited by masked errors, and on every log line of the request."""

import json
import logging
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from gql.app import create_app
from gql.settings import Settings
from tests.conftest import make_settings
from tests.fakes import LiveServer

HEX_ID = re.compile(r"^[0-9a-f]{32}$")
ONE = "query One($id: UUID!) { emailDomain(id: $id) { id status } }"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/metrics", None, 200),
        ("POST", "/graphql", {"query": "{ __typename }"}, 200),
        ("POST", "/graphql", {"query": "{ nope"}, 200),
        ("PATCH", "/api/email/domains/not-a-uuid", {"status": "failed"}, 401),
        ("GET", "/api/email/domains/00000000-0000-0000-0000-000000000000", None, 405),
        ("GET", "/no/such/endpoint", None, 404),
    ],
)
async def test_the_callers_request_id_comes_back_on_every_response(
    client, method, path, body, status
):
    request_id = f"caller-{uuid.uuid4()}"
    response = await client.request(method, path, json=body, headers={"X-Request-ID": request_id})
    assert response.status_code == status, response.text
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "unsafe", ["has space", "x" * 129, "<script>", 'quote"d', "semi;colon", "ünïcode"]
)
async def test_unsafe_or_long_request_ids_are_replaced(client, unsafe):
    response = await client.get("/healthz", headers={"X-Request-ID": unsafe.encode("utf-8")})
    assert HEX_ID.match(response.headers["X-Request-ID"]), response.headers


async def test_without_a_request_id_each_request_gets_its_own(client):
    first = (await client.get("/healthz")).headers["X-Request-ID"]
    second = (await client.get("/healthz")).headers["X-Request-ID"]
    assert HEX_ID.match(first)
    assert HEX_ID.match(second)
    assert first != second


async def test_a_masked_graphql_error_cites_the_request_id(
    client, make_owner, services, monkeypatch, caplog
):
    owner = await make_owner()

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(services.domains, "find", broken)
    request_id = f"trace-me-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            "/graphql",
            json={"query": ONE, "variables": {"id": str(owner.domains[0].id)}},
            headers={**owner.headers, "X-Request-ID": request_id},
        )
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert request_id in error["message"]
    assert response.headers["X-Request-ID"] == request_id
    logged = [r for r in caplog.records if r.exc_info and request_id in r.getMessage()]
    assert logged, caplog.records


async def test_an_unexpected_rest_error_cites_the_request_id(
    app, make_owner, services, monkeypatch, caplog
):
    owner = await make_owner(["pending"])

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(services.domains, "override_status", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    request_id = f"rest-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        with caplog.at_level(logging.ERROR):
            response = await client.patch(
                f"/api/email/domains/{owner.domains[0].id}",
                json={"status": "failed"},
                headers={**owner.headers, "X-Request-ID": request_id},
            )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert request_id in response.json()["error"]["message"]
    assert response.headers["X-Request-ID"] == request_id
    assert any(r.exc_info and request_id in r.getMessage() for r in caplog.records)


_LOG_FROM_A_REQUEST = """
import logging.config
from gql.observability.logs import logging_config
from gql.observability.request_id import bind
logging.config.dictConfig(logging_config(level="INFO", json={json}))
bind("line-id")
logging.getLogger("gql.test").warning("something happened")
"""


@pytest.mark.parametrize("json_lines", [False, True])
def test_log_lines_carry_the_request_id(json_lines):
    script = _LOG_FROM_A_REQUEST.format(json=json_lines)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    line = done.stderr.strip()
    if json_lines:
        record = json.loads(line)
        assert record["message"] == "something happened"
        assert record["level"] == "WARNING"
        assert record["logger"] == "gql.test"
        assert record["request_id"] == "line-id"
        assert "time" in record
    else:
        assert line.endswith("WARNING gql.test something happened [request line-id]"), line


def test_log_format_defaults_to_json_only_in_production(database_url):
    assert make_settings(database_url).json_logs is False
    assert make_settings(database_url, log_format="json").json_logs is True
    production = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        database_url=database_url,
        claim_secret="c" * 40,
    )
    assert production.json_logs is True
    text_in_production = make_settings(
        database_url, environment="production", log_format="text", claim_secret="c" * 40
    )
    assert text_in_production.json_logs is False


async def test_the_websocket_handshake_returns_the_request_id(database_url):
    app = create_app(make_settings(database_url))
    with LiveServer(app, lifespan=True, websockets=True, name="gateway") as server:
        url = server.url.replace("http://", "ws://") + "/graphql"
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],
            additional_headers={"X-Request-ID": "ws-request-1"},
        ) as ws:
            assert ws.response is not None
            assert ws.response.headers["X-Request-ID"] == "ws-request-1"
