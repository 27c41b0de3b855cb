"""job queue (procrastinate 3.x schema)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

The poller's jobs live in procrastinate's tables. Its schema ships with the pinned package; a
later procrastinate upgrade adds its own migration files as new revisions here.
"""

from collections.abc import Sequence
from importlib.resources import files

from alembic import op
from sqlalchemy.util import await_

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = files("procrastinate.sql").joinpath("schema.sql").read_text()
    # The script holds many statements and function bodies, which a prepared statement cannot:
    # run it with the driver's simple query protocol, inside the migration's transaction.
    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    await_(driver.execute(schema))


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        "procrastinate_jobs, procrastinate_workers CASCADE"
    )
