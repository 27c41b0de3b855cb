"""Alembic, driven from code so that `gql-gateway migrate` and the embedded server share it.

The revision a database should be at is the head of the migration scripts installed with this
code; a process reads it once. The revision a database is at is its `alembic_version` row.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from gql.db.statements import compile_statement

MIGRATIONS = Path(__file__).parent / "migrations"

_CURRENT = compile_statement(
    sa.select(sa.column("version_num")).select_from(sa.table("alembic_version"))
)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema. Blocking: call outside an event loop."""
    command.upgrade(alembic_config(url), "head")


def check(url: str) -> None:
    """Raise if the models and the migrations disagree."""
    command.check(alembic_config(url))


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


@functools.cache
def expected_revision() -> str:
    """The head of the migration scripts: the revision this code needs."""
    head = _scripts().get_current_head()
    assert head is not None, "the migration scripts have no single head"
    return head


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema is, against what this code expects."""

    current: str | None
    expected: str

    @property
    def behind(self) -> bool:
        """Never migrated, or at an older revision of these scripts: this code cannot use it."""
        return self.current is None or (
            self.current != self.expected and self.current in _known_revisions()
        )

    @property
    def status(self) -> str:
        if self.current == self.expected:
            return "ok"
        # A revision these scripts do not know was written by newer code: in a rolling upgrade
        # the new code migrates while old processes still serve, so it is reported, not refused.
        return "behind" if self.behind else "ahead"

    @property
    def hint(self) -> str:
        current = self.current or "none (never migrated)"
        return (
            f"The database schema is at revision {current}, expected {self.expected}: "
            "run `gql-gateway migrate`."
        )


async def schema_state(conn: asyncpg.Connection) -> SchemaState:
    try:
        row = await _CURRENT.fetchrow(conn)
    except asyncpg.UndefinedTableError:
        row = None
    return SchemaState(current=None if row is None else row[0], expected=expected_revision())
