"""The runner reads its settings once, from its own ``CLAWFLEET_RUNNER_*`` variables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.settings import load_runner_settings

TOKEN = "cf_runner-token-value"


@pytest.fixture
def runner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CLAWFLEET_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLAWFLEET_RUNNER_SERVER", "http://127.0.0.1:7420")
    monkeypatch.setenv("CLAWFLEET_RUNNER_INSTANCE", "i-1")
    monkeypatch.setenv("CLAWFLEET_RUNNER_TOKEN", TOKEN)


@pytest.mark.usefixtures("runner_env")
def test_the_runner_settings_come_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_runner_settings()
    assert (settings.server, settings.instance) == ("http://127.0.0.1:7420", "i-1")
    assert settings.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert settings.log.level == "info"
    assert settings.give_up_after_seconds == 3600
    monkeypatch.setenv("CLAWFLEET_RUNNER_LOG__LEVEL", "debug")
    monkeypatch.setenv("CLAWFLEET_RUNNER_GIVE_UP_AFTER_SECONDS", "600")
    monkeypatch.setenv("CLAWFLEET_LOG__LEVEL", "error")  # the control plane's, not the runner's
    settings = load_runner_settings()
    assert settings.log.level == "debug"
    assert settings.give_up_after_seconds == 600


@pytest.mark.usefixtures("runner_env")
def test_a_missing_or_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAWFLEET_RUNNER_TOKEN")
    with pytest.raises(ConfigurationError, match="CLAWFLEET_RUNNER_TOKEN: Field required"):
        load_runner_settings()
    monkeypatch.setenv("CLAWFLEET_RUNNER_TOKEN", TOKEN)
    monkeypatch.setenv("CLAWFLEET_RUNNER_LOG__LEVEL", "loud")
    with pytest.raises(ConfigurationError, match="CLAWFLEET_RUNNER_LOG__LEVEL"):
        load_runner_settings()


@pytest.mark.usefixtures("runner_env")
def test_the_runner_command_without_its_environment_says_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLAWFLEET_RUNNER_INSTANCE"}
    result = subprocess.run(
        [sys.executable, "-m", "clawfleet", "runner"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "CLAWFLEET_RUNNER_INSTANCE: Field required" in result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr
