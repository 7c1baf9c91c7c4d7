from pathlib import Path

import pytest
from pydantic import ValidationError

from loopml.settings import Settings


def test_defaults_are_the_embedded_home(tmp_path: Path) -> None:
    s = Settings()
    assert s.home == Path(".loopml")
    assert s.resolved_database_url == f"sqlite:///{Path.cwd() / '.loopml' / 'loopml.db'}"
    assert s.resolved_storage_url == (Path.cwd() / ".loopml" / "blobs").as_uri()
    assert (s.host, s.port, s.executor) == ("127.0.0.1", 8000, "local")


def test_toml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("loopml.toml").write_text(
        'home = "/srv/ml"\nport = 9000\n[job_kinds]\nexport = "team.jobs:export"\n'
    )
    s = Settings()
    assert (s.home, s.port, s.job_kinds) == (Path("/srv/ml"), 9000, {"export": "team.jobs:export"})
    monkeypatch.setenv("LOOPML_PORT", "9100")
    monkeypatch.setenv("LOOPML_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9"}')
    s = Settings()
    assert s.port == 9100
    assert s.storage_options == {"endpoint_url": "http://127.0.0.1:9"}


def test_config_file_named_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('storage_url = "s3://bucket/prefix"\n')
    monkeypatch.setenv("LOOPML_CONFIG", str(cfg))
    assert Settings().resolved_storage_url == "s3://bucket/prefix"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("LOOPML_PORT", "eighty", "port"),
        ("LOOPML_EXECUTOR", "kubernetes", "executor"),
        ("LOOPML_HEARTBEAT_TIMEOUT", "0", "heartbeat_timeout"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert field in str(err.value)


def test_unknown_key_in_toml_is_an_error() -> None:
    Path("loopml.toml").write_text('databse_url = "sqlite://"\n')
    with pytest.raises(ValidationError) as err:
        Settings()
    assert "databse_url" in str(err.value)
