"""The operations options of the command line refuse bad values with a clear message."""

import pytest

from gql.cli import main

pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_serve_refuses_a_worker_count_that_is_not_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--workers", value])
    assert exit_info.value.code == 2
    assert "is not a positive whole number" in capsys.readouterr().err


def test_tracing_without_a_working_setup_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gql.observability import tracing

    monkeypatch.setattr(tracing, "AVAILABLE", False)
    monkeypatch.setenv("TRACING", "true")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["serve", "--port", "1"]) == 1
    assert "pip install 'email-domain-gateway[tracing]'" in capsys.readouterr().err
