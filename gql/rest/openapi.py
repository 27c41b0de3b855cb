"""The OpenAPI description of the REST shim, served at /api/openapi.json."""

from typing import Any

from gql.models import OVERRIDABLE_STATUSES
from gql.rest.domains import ID_PATTERN

_TIMESTAMP = {"type": "string", "format": "date-time"}
_NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _error(description: str, *, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = {name: {"schema": {"type": "string"}} for name in headers}
    return response


def openapi_document() -> dict[str, Any]:
    """The contract's `PATCH /api/email/domains/{id}`, every field and every error row."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Email domain gateway: REST status override",
            "version": "1.0.0",
            "description": (
                "Override the cached domain status. This does NOT touch AgentMail or DNS; "
                "`verified` is never accepted (use the GraphQL verifyEmailDomain operation)."
            ),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "DnsRecord": {
                    "type": "object",
                    "required": ["type", "name", "value", "priority"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "value": {"type": "string"},
                        "priority": {"type": ["integer", "null"]},
                    },
                },
                "Domain": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "id", "user_id", "domain", "agentmail_domain_id", "status",
                        "dns_records", "verified_at", "created_at", "updated_at",
                    ],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "user_id": {"type": "string", "format": "uuid"},
                        "domain": {"type": "string"},
                        "agentmail_domain_id": {"type": ["string", "null"]},
                        "status": {"enum": ["pending", "verifying", "verified", "failed"]},
                        "dns_records": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/DnsRecord"},
                        },
                        "verified_at": _NULLABLE_TIMESTAMP,
                        "created_at": _TIMESTAMP,
                        "updated_at": _TIMESTAMP,
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "additionalProperties": False,
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string", "minLength": 1},
                            },
                        }
                    },
                },
            },
        },
        "paths": {
            "/api/email/domains/{id}": {
                "patch": {
                    "operationId": "overrideEmailDomainStatus",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": ID_PATTERN.pattern},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "status": {
                                            "enum": [s.value for s in OVERRIDABLE_STATUSES]
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The row, as stored after the override.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["domain"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "domain": {"$ref": "#/components/schemas/Domain"}
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("invalid_json: the body is not a JSON object."),
                        "401": _error(
                            "unauthorized: no, unknown, revoked or expired token.",
                            headers=("WWW-Authenticate",),
                        ),
                        "404": _error("not_found: no such domain among yours."),
                        "405": _error("method_not_allowed.", headers=("Allow",)),
                        "413": _error("payload_too_large."),
                        "415": _error("unsupported_media_type: send application/json."),
                        "422": _error(
                            "validation_error: bad id, missing or disallowed status, "
                            "unknown members."
                        ),
                        "429": _error("rate_limited.", headers=("Retry-After",)),
                        "503": _error(
                            "unavailable: the database cannot be reached or its schema is behind"
                            " the code; the message says whether anything may have been written.",
                            headers=("Retry-After",),
                        ),
                    },
                }
            }
        },
    }  # fmt: skip
