"""Persisted documents: Apollo Client's persisted-query link against a real server (APQ, and
trusted documents only), and the protocol's edges through HTTP."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, print_ast

from gql.app import create_app
from gql.graphql.persisted import ManifestError, load_manifest, sha256
from tests.conftest import make_settings, running
from tests.helpers import MakeOwner, node_client, serve

# Apollo Client adds __typename to every selection set below the root before hashing, so a
# document that already has them is hashed as written (after graphql-js's printer).
ONE = print_ast(
    parse(
        "query One($id: UUID!) { emailDomain(id: $id) { id status createdAt"
        " dnsRecords { type __typename } __typename } }"
    )
)
UPDATE = print_ast(
    parse(
        "mutation Update($id: UUID!, $status: DomainStatusInput!) {"
        " updateEmailDomainStatus(id: $id, status: $status) { id status __typename } }"
    )
)
LIST = "{ emailDomains { totalCount } }"


async def _apollo(url: str, key: str, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = []
    async with node_client("apollo-apq.mjs", f"{url}/graphql", key, json.dumps(operations)) as js:
        while (message := await js.next(within=30))["event"] != "done":
            messages.append(message)
    return messages


def _fetches(messages: list[dict[str, Any]]) -> list[tuple[str, bool, int]]:
    return [(m["method"], m["sentQuery"], m["status"]) for m in messages if m["event"] == "fetch"]


async def test_apollo_persisted_query_link_registers_then_reuses_hashes(
    database_url: str, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    one = {"query": ONE, "variables": {"id": str(domain.id)}}
    update = {"query": UPDATE, "variables": {"id": str(domain.id), "status": "FAILED"}}
    async with serve(database_url) as served:
        messages = await _apollo(served.url, owner.key, [one, one, update, update])
    assert _fetches(messages) == [
        ("GET", False, 200),  # the hash alone: PERSISTED_QUERY_NOT_FOUND
        ("POST", True, 200),  # the text with its hash, remembered
        ("GET", False, 200),  # the hash alone again: answered
        ("POST", False, 200),  # mutations stay POSTs, hash first...
        ("POST", True, 200),  # ...then the text once
        ("POST", False, 200),
    ]
    results = [m for m in messages if m["event"] == "result"]
    assert [r["errors"] for r in results] == [None] * 4
    assert results[0]["data"] == results[1]["data"]
    assert results[0]["data"]["emailDomain"]["status"] == "PENDING"
    assert results[0]["data"]["emailDomain"]["createdAt"].endswith("Z")
    assert results[3]["data"]["updateEmailDomainStatus"]["status"] == "FAILED"


def _manifest(tmp_path: Path, documents: list[str], *, relay: bool = False) -> Path:
    path = tmp_path / ("relay.json" if relay else "apollo.json")
    if relay:
        path.write_text(json.dumps({sha256(d): d for d in documents}))
    else:
        operations = [
            {"id": sha256(d), "name": f"op{i}", "type": "query", "body": d}
            for i, d in enumerate(documents)
        ]
        path.write_text(
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": operations,
                }
            )
        )
    return path


async def test_apollo_client_runs_trusted_documents_and_nothing_else(
    database_url: str, make_owner: MakeOwner, tmp_path: Path
) -> None:
    owner = await make_owner(["verifying"])
    manifest = _manifest(tmp_path, [ONE])
    env = {"GRAPHQL_TRUSTED_DOCUMENTS": str(manifest), "GRAPHQL_TRUSTED_DOCUMENTS_ONLY": "true"}
    one = {"query": ONE, "variables": {"id": str(owner.domains[0].id)}}
    async with serve(database_url, env) as served:
        messages = await _apollo(served.url, owner.key, [one, {"query": LIST}])
    assert _fetches(messages)[0] == ("GET", False, 200)
    results = [m for m in messages if m["event"] != "fetch"]
    assert results[0]["data"]["emailDomain"]["status"] == "VERIFYING"
    # Not in the manifest: refused, whether hashed or sent in full.
    assert results[1]["event"] == "error" or results[1]["errors"]
    assert all(f[2] == 400 for f in _fetches(messages)[1:])


@pytest.fixture
async def apq(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(make_settings(database_url))) as client:
        yield client


def _codes(response: Any) -> list[str]:
    return [e["extensions"]["code"] for e in response.json()["errors"]]


async def test_apq_protocol_edges(apq: httpx.AsyncClient, make_owner: MakeOwner) -> None:
    owner = await make_owner(["pending"])
    digest = sha256(LIST)
    hashed = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    miss = await apq.post("/graphql", json=hashed, headers=owner.headers)
    assert miss.status_code == 200
    assert _codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    wrong = await apq.post("/graphql", json={**hashed, "query": LIST + " "}, headers=owner.headers)
    assert wrong.status_code == 400
    assert _codes(wrong) == ["BAD_REQUEST"]
    assert "not the SHA-256" in wrong.json()["errors"][0]["message"]
    stored = await apq.post("/graphql", json={**hashed, "query": LIST}, headers=owner.headers)
    assert stored.json() == {"data": {"emailDomains": {"totalCount": 1}}}
    params = {"extensions": json.dumps(hashed["extensions"])}
    for accept in ("application/json", "application/graphql-response+json", "*/*"):
        hit = await apq.get("/graphql", params=params, headers={**owner.headers, "Accept": accept})
        assert hit.status_code == 200, hit.text
        assert hit.json() == {"data": {"emailDomains": {"totalCount": 1}}}
    version = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": digest}}}
    unsupported = await apq.post("/graphql", json=version, headers=owner.headers)
    assert _codes(unsupported) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


@pytest.mark.parametrize("relay", [False, True], ids=["apollo-manifest", "relay-manifest"])
async def test_trusted_documents_by_id_hash_or_text(
    database_url: str, make_owner: MakeOwner, tmp_path: Path, relay: bool
) -> None:
    owner = await make_owner(["failed"])
    manifest = _manifest(tmp_path, [LIST], relay=relay)
    settings = make_settings(
        database_url, graphql_trusted_documents=manifest, graphql_trusted_documents_only=True
    )
    app = create_app(settings)
    # Parsed, validated and compiled before the first request.
    entry = app.state.schema.documents.get(LIST)
    assert entry is not None
    assert entry.errors == []
    assert entry.plans._plans
    answer = {"data": {"emailDomains": {"totalCount": 1}}}
    async with running(app) as client:
        for request in (
            {"documentId": f"sha256:{sha256(LIST)}"},
            {"documentId": sha256(LIST)},
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(LIST)}}},
            {"query": LIST},
        ):
            response = await client.post("/graphql", json=request, headers=owner.headers)
            assert response.json() == answer, request
        other = "{ emailDomains { edges { cursor } } }"
        for request, code in (
            ({"query": other}, "PERSISTED_QUERY_NOT_IN_LIST"),
            (
                {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(other)}}},
                "PERSISTED_QUERY_NOT_IN_LIST",
            ),
            ({"documentId": "sha256:" + "0" * 64}, "PERSISTED_QUERY_NOT_FOUND"),
        ):
            response = await client.post("/graphql", json=request, headers=owner.headers)
            assert response.status_code == 400
            assert _codes(response) == [code]


def test_start_up_refuses_an_unusable_manifest(database_url: str, tmp_path: Path) -> None:
    bad_id = tmp_path / "bad-id.json"
    bad_id.write_text(json.dumps({"abc": LIST}))
    with pytest.raises(ManifestError, match="not the SHA-256"):
        load_manifest(bad_id)
    deep = "{ emailDomains { " * 12 + "totalCount" + " }" * 12
    invalid = _manifest(tmp_path, ["{ emailDomains { nope } }"])
    with pytest.raises(ValueError, match="Cannot query field 'nope'"):
        create_app(make_settings(database_url, graphql_trusted_documents=invalid))
    too_deep = _manifest(tmp_path, [deep], relay=True)
    with pytest.raises(ValueError, match="is not valid"):
        create_app(make_settings(database_url, graphql_trusted_documents=too_deep))
    schema = _manifest(tmp_path, ["{ __schema { queryType { name } } }"])
    create_app(make_settings(database_url, graphql_trusted_documents=schema))
    with pytest.raises(ValueError, match="introspection has been disabled"):
        create_app(
            make_settings(database_url, graphql_trusted_documents=schema, introspection=False)
        )
    with pytest.raises(ValueError, match="needs GRAPHQL_TRUSTED_DOCUMENTS"):
        make_settings(database_url, graphql_trusted_documents_only=True)
