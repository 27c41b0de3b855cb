"""The workloads, each as raw HTTP/1.1 requests for the gateway and for the baseline.

Each GraphQL workload runs with an API key and with a session token (JWT); the list also runs
as a persisted document (the APQ hash over GET, registered before the run).

Every request is built up front as bytes, so the load generator spends its time on the socket.
The status updates alternate each domain between `failed` and `pending`, so every request
really changes a row, and walk round-robin over all seeded domains. An answer counts as a
success when it is a 200 carrying the domain with one of those two statuses: at high
concurrency a slow request can be overtaken by the next one for the same domain, so the
status it returns is not always the one it sent.
"""

import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

Request = tuple[bytes, tuple[bytes, ...]]
"""Raw request bytes, and fragments of which a successful response body contains one."""

RequestSource = Callable[[], Request]

DOMAIN_FIELDS = (
    "id userId domain agentmailDomainId status dnsRecords { type name value priority } "
    "verifiedAt createdAt updatedAt"
)
MUTATION = (
    "mutation SetStatus($id: UUID!, $status: DomainStatusInput!) { "
    f"updateEmailDomainStatus(id: $id, status: $status) {{ {DOMAIN_FIELDS} }} }}"
)
LIST_QUERY = (
    "query Domains { emailDomains(first: 50) { "
    f"edges {{ cursor node {{ {DOMAIN_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)
PAGE_SIZE = 50
LIST_QUERY_HASH = hashlib.sha256(LIST_QUERY.encode()).hexdigest()
_REST_UPDATED = (b'"status":"failed"', b'"status":"pending"')
_GRAPHQL_UPDATED = (b'"status":"FAILED"', b'"status":"PENDING"')


def http_request(method: str, path: str, port: int, token: str, body: bytes | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Accept: application/json",
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class StatusToggle:
    """Hands out (domain, status) pairs: round-robin over domains, each flipping on every use."""

    def __init__(self, domain_ids: list[uuid.UUID]) -> None:
        self._ids = [str(i) for i in domain_ids]
        self._next = 0
        self._failed = dict.fromkeys(self._ids, False)

    def __call__(self) -> tuple[str, str]:
        domain_id = self._ids[self._next]
        self._next = (self._next + 1) % len(self._ids)
        failed = not self._failed[domain_id]
        self._failed[domain_id] = failed
        return domain_id, "failed" if failed else "pending"


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    gateway: Callable[[int], RequestSource]
    """Given the gateway's port, a source of requests."""
    baseline: Callable[[int], RequestSource]
    graphql: bool = True
    """Measured on both gateways: compiled plans on and off."""


def _rest_patch(toggle: StatusToggle, token: str) -> Callable[[int], RequestSource]:
    def source(port: int) -> RequestSource:
        def next_request() -> Request:
            domain_id, status = toggle()
            body = orjson.dumps({"status": status})
            request = http_request("PATCH", f"/api/email/domains/{domain_id}", port, token, body)
            return request, _REST_UPDATED

        return next_request

    return source


def _graphql_mutation(toggle: StatusToggle, token: str) -> Callable[[int], RequestSource]:
    def source(port: int) -> RequestSource:
        def next_request() -> Request:
            domain_id, status = toggle()
            variables = {"id": domain_id, "status": status.upper()}
            body = orjson.dumps({"query": MUTATION, "variables": variables})
            request = http_request("POST", "/graphql", port, token, body)
            return request, _GRAPHQL_UPDATED

        return next_request

    return source


def _graphql_list(token: str) -> Callable[[int], RequestSource]:
    def source(port: int) -> RequestSource:
        body = orjson.dumps({"query": LIST_QUERY})
        request = http_request("POST", "/graphql", port, token, body)
        return lambda: (request, (b'"dnsRecords"',))

    return source


def _graphql_persisted_list(token: str) -> Callable[[int], RequestSource]:
    def source(port: int) -> RequestSource:
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": LIST_QUERY_HASH}}
        query = urllib.parse.urlencode({"extensions": json.dumps(extensions)})
        request = http_request("GET", f"/graphql?{query}", port, token)
        return lambda: (request, (b'"dnsRecords"',))

    return source


def _baseline_list(token: str) -> Callable[[int], RequestSource]:
    def source(port: int) -> RequestSource:
        request = http_request("GET", f"/domains?first={PAGE_SIZE}", port, token)
        return lambda: (request, (b'"dns_records"',))

    return source


def workloads(domain_ids: list[uuid.UUID], api_key: str, jwt: str) -> list[Workload]:
    toggle = StatusToggle(domain_ids)
    out = []
    for suffix, token in (("", api_key), ("_jwt", jwt)):
        out += [
            Workload(
                name=f"rest_patch{suffix}",
                gateway=_rest_patch(toggle, token),
                baseline=_rest_patch(toggle, api_key),
                graphql=False,
            ),
            Workload(
                name=f"graphql_mutation{suffix}",
                gateway=_graphql_mutation(toggle, token),
                baseline=_rest_patch(toggle, api_key),
            ),
            Workload(
                name=f"graphql_list{suffix}",
                gateway=_graphql_list(token),
                baseline=_baseline_list(api_key),
            ),
        ]
    out.append(
        Workload(
            name="graphql_list_persisted",
            gateway=_graphql_persisted_list(api_key),
            baseline=_baseline_list(api_key),
        )
    )
    return out
