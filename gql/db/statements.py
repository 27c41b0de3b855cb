"""SQLAlchemy Core statements compiled once to asyncpg's SQL and positional parameters."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from gql.observability.db import observe_statement, statement_labels

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text and the order of its named parameters; literal values travel with it."""

    sql: str
    names: tuple[str, ...]
    literals: Mapping[str, Any]
    labels: tuple[str, str] = ("", "")

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[n] if n in values else self.literals[n] for n in self.names]

    async def fetch(self, conn: asyncpg.Connection, **values: Any) -> list[asyncpg.Record]:
        with observe_statement(self.labels, self.sql):
            rows: list[asyncpg.Record] = await conn.fetch(self.sql, *self.args(values))
        return rows

    async def fetchrow(self, conn: asyncpg.Connection, **values: Any) -> asyncpg.Record | None:
        with observe_statement(self.labels, self.sql):
            row: asyncpg.Record | None = await conn.fetchrow(self.sql, *self.args(values))
        return row


def compile_statement(stmt: ClauseElement) -> Statement:
    compiled = stmt.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    sql = str(compiled)
    return Statement(
        sql=sql,
        names=tuple(compiled.positiontup or ()),
        literals=dict(compiled.params),
        labels=statement_labels(sql),
    )
