"""Domain errors raised by the service layer and translated once by each transport.

Each class knows its REST status and code and its GraphQL `extensions.code`; graphql-core copies
the `extensions` attribute of an exception raised in a resolver onto the GraphQL error.
"""

from typing import ClassVar


class DomainError(Exception):
    """Base of every expected error; its message is safe to show to the caller."""

    http_status: ClassVar[int] = 500
    rest_code: ClassVar[str] = "internal_error"
    graphql_code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code}


class InvalidInput(DomainError):
    http_status = 422
    rest_code = "validation_error"
    graphql_code = "BAD_USER_INPUT"


class Unauthenticated(DomainError):
    http_status = 401
    rest_code = "unauthorized"
    graphql_code = "UNAUTHENTICATED"


class NotFound(DomainError):
    http_status = 404
    rest_code = "not_found"
    graphql_code = "NOT_FOUND"


class Conflict(DomainError):
    http_status = 409
    rest_code = "conflict"
    graphql_code = "CONFLICT"


class RateLimited(DomainError):
    http_status = 429
    rest_code = "rate_limited"
    graphql_code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code, "retryAfter": self.retry_after}


class Unavailable(DomainError):
    http_status = 503
    rest_code = "unavailable"
    graphql_code = "SERVICE_UNAVAILABLE"
    retry_after: ClassVar[int] = 5

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code, "retryAfter": self.retry_after}
