"""The committed schema and the migrations never drift from the code."""

from pathlib import Path

from gql.db.migrate import check
from gql.graphql.schema import build_schema
from gql.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schema_equals_served_schema() -> None:
    served = build_schema(Settings(_env_file=None)).as_str() + "\n"
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == served, "schema.graphql is stale: run `make schema` and commit it"


def test_contract_names_are_served() -> None:
    sdl = (ROOT / "schema.graphql").read_text()
    for line in (
        "enum DomainStatusInput {",
        "emailDomain(id: UUID!): Domain",
        "emailDomains(first: Int = 50, after: String = null, status: DomainStatus = null, "
        "sync: Boolean! = false): DomainConnection!",
        "createEmailDomain(domain: String!): Domain!",
        "verifyEmailDomain(id: UUID!, poll: Boolean! = false): Domain!",
        "deleteEmailDomain(id: UUID!): DeletedEmailDomain!",
        "updateEmailDomainStatus(id: UUID!, status: DomainStatusInput!): Domain!",
    ):
        assert line in sdl


def test_models_and_migrations_agree(database_url: str) -> None:
    check(database_url)
