"""JSON bodies of the REST shim, written with orjson (timestamps in UTC with a `Z`)."""

from typing import Any

import orjson
from starlette.responses import Response

from gql.errors import DomainError, RateLimited, Unavailable
from gql.models import DomainRecord


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def domain_error_response(error: DomainError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    if error.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(error.http_status, error.rest_code, error.message, headers)


def domain_body(record: DomainRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "user_id": str(record.user_id),
        "domain": record.domain,
        "agentmail_domain_id": record.agentmail_domain_id,
        "status": record.status.value,
        "dns_records": [
            {"type": r.type, "name": r.name, "value": r.value, "priority": r.priority}
            for r in record.dns_records
        ],
        "verified_at": record.verified_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
