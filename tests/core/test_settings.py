from __future__ import annotations

from pathlib import Path

import pytest

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.settings import DEFAULT_PORT, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CLAWFLEET_SERVER__PORT", "CLAWFLEET_DATABASE__URL", "CLAWFLEET_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.host == "127.0.0.1"
    assert settings.port == DEFAULT_PORT
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/clawfleet.db"
    assert settings.is_sqlite


def test_environment_and_file_and_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "clawfleet.yaml"
    config.write_text("host: 0.0.0.0\nport: 9001\napi:\n  max_body_bytes: 2048\n")
    monkeypatch.setenv("CLAWFLEET_PORT", "9002")
    monkeypatch.setenv("CLAWFLEET_SERVER", "http://127.0.0.1:1")  # the client's, ignored here
    monkeypatch.setenv("CLAWFLEET_DATABASE__URL", "postgresql://u@127.0.0.1:5432/db")
    settings = load_settings(config, data_dir=tmp_path)
    assert settings.host == "0.0.0.0"  # from the file
    assert settings.port == 9002  # the environment beats the file
    assert settings.api.max_body_bytes == 2048
    assert settings.database_url == "postgresql+asyncpg://u@127.0.0.1:5432/db"
    assert settings.base_url == "http://127.0.0.1:9002"


def test_unknown_or_wrong_settings_name_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("api:\n  bogus: 1\n")
    with pytest.raises(ConfigurationError, match=r"api\.bogus"):
        load_settings(config)
    monkeypatch.setenv("CLAWFLEET_PORT", "not-a-port")
    with pytest.raises(ConfigurationError, match="port"):
        load_settings()
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_secret_key_setting_is_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWFLEET_SECRETS__KEY", "c2VjcmV0LWtleS12YWx1ZQ==")
    settings = load_settings()
    assert "c2VjcmV0" not in repr(settings)
    assert "c2VjcmV0" not in str(settings.model_dump())


def test_unparsable_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWFLEET_API", "oops")
    with pytest.raises(ConfigurationError, match="invalid settings"):
        load_settings()
    monkeypatch.delenv("CLAWFLEET_API")
    monkeypatch.setenv("CLAWFLEET_LOG__LEVEL", "loud")
    with pytest.raises(ConfigurationError, match=r"log\.level"):
        load_settings()
