"""The reference JavaScript clients against a real `gql-gateway serve` process."""

import json

from tests.helpers import node_client, serve


async def test_graphql_ws_client_runs_an_operation_over_text_frames(database_url: str) -> None:
    async with (
        serve(database_url) as served,
        node_client(
            "ws-operation.mjs", served.ws_url, json.dumps({"query": "{ __typename }"})
        ) as js,
    ):
        assert await js.next() == {"event": "next", "value": {"data": {"__typename": "Query"}}}
        assert await js.next() == {"event": "complete"}


async def test_graphql_ws_client_gets_graphql_errors_for_an_unauthenticated_query(
    database_url: str,
) -> None:
    request = json.dumps({"query": "{ emailDomains { totalCount } }"})
    async with (
        serve(database_url) as served,
        node_client("ws-operation.mjs", served.ws_url, request) as js,
    ):
        message = await js.next()
        assert message["event"] == "next", message
        errors = message["value"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]
