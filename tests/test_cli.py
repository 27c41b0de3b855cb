"""`gql-gateway` commands against the test database."""

import json
import uuid
from pathlib import Path

import pytest

from gql.cli import main
from tests.helpers import RunCli

pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*argv: str) -> int:
        return main(list(argv))

    return run


def test_keys_create_list_revoke(cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    user = str(uuid.uuid4())
    assert cli("keys", "create", "--user", user) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("pk_live_")
    assert len(out[0]) > 40

    assert cli("keys", "list", "--user", user) == 0
    listing = capsys.readouterr().out.strip().splitlines()
    assert len(listing) == 1
    assert "active" in listing[0]
    assert out[0] not in listing[0]
    key_id = listing[0].split()[0]

    assert cli("keys", "revoke", key_id) == 0
    capsys.readouterr()
    assert cli("keys", "list", "--user", user) == 0
    assert "revoked" in capsys.readouterr().out


def test_revoking_an_unknown_key_fails_clearly(
    cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("keys", "revoke", str(uuid.uuid4())) == 1
    assert "keys list" in capsys.readouterr().err


def test_seed_prints_domains_as_json(cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    user = str(uuid.uuid4())
    assert cli("seed", "--user", user, "--count", "3") == 0
    domains = json.loads(capsys.readouterr().out)
    assert len(domains) == 3
    assert {d["user_id"] for d in domains} == {user}
    assert all(len(d["dns_records"]) == 4 for d in domains)


def test_export_schema_writes_sdl(cli: RunCli, tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    assert cli("export-schema", "--output", str(target)) == 0
    assert "updateEmailDomainStatus" in target.read_text()


def test_bad_user_id_is_refused(cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("keys", "create", "--user", "not-a-uuid")
    assert exit_info.value.code == 2
    assert "is not a UUID" in capsys.readouterr().err
