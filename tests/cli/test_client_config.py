from __future__ import annotations

from pathlib import Path

import pytest

from clawfleet.client.config import is_local, load_client_config
from clawfleet.core.errors import ConfigurationError


def write_token(data_dir: Path, token: str = "cf_local") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "admin-token").write_text(token + "\n")


def test_local_admin_token_is_found_in_the_data_dir(tmp_path: Path) -> None:
    write_token(tmp_path)
    env = {"CLAWFLEET_DATA_DIR": str(tmp_path), "CLAWFLEET_CONFIG": str(tmp_path / "none")}
    config = load_client_config(env)
    assert config.server == "http://127.0.0.1:7420"
    assert config.token == "cf_local"
    assert "cf_local" not in repr(config)


def test_local_token_is_never_sent_to_a_remote_server(tmp_path: Path) -> None:
    write_token(tmp_path)
    env = {
        "CLAWFLEET_DATA_DIR": str(tmp_path),
        "CLAWFLEET_CONFIG": str(tmp_path / "none"),
        "CLAWFLEET_SERVER": "https://fleet.example.com",
    }
    assert load_client_config(env).token is None


def test_precedence_flags_env_file(tmp_path: Path) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("server: http://127.0.0.1:9000\ntoken: cf_file\ntenant: acme\n")
    env = {"CLAWFLEET_CONFIG": str(config_file), "CLAWFLEET_DATA_DIR": str(tmp_path)}
    from_file = load_client_config(env)
    assert (from_file.server, from_file.token, from_file.tenant) == (
        "http://127.0.0.1:9000",
        "cf_file",
        "acme",
    )
    env |= {"CLAWFLEET_TOKEN": "cf_env", "CLAWFLEET_SERVER": "http://127.0.0.1:9100/"}
    from_env = load_client_config(env)
    assert (from_env.server, from_env.token) == ("http://127.0.0.1:9100", "cf_env")
    from_flags = load_client_config(env, server="http://localhost:1", token="cf_flag", tenant="t")
    assert (from_flags.server, from_flags.token, from_flags.tenant) == (
        "http://localhost:1",
        "cf_flag",
        "t",
    )


def test_bad_client_config(tmp_path: Path) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("sever: typo\n")
    with pytest.raises(ConfigurationError, match="unknown keys"):
        load_client_config({"CLAWFLEET_CONFIG": str(config_file)})
    with pytest.raises(ConfigurationError, match="not an http"):
        load_client_config({"CLAWFLEET_CONFIG": str(tmp_path / "x")}, server="ftp://x")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:1", True),
        ("http://localhost", True),
        ("http://[::1]:7420", True),
        ("http://10.0.0.1", False),
        ("https://fleet.example.com", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_the_client_waits_out_a_rate_limit(tmp_path: Path) -> None:
    import httpx

    from clawfleet.client.config import ClientConfig
    from clawfleet.client.http import ClawfleetClient

    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "slow down"}),
                    httpx.Response(200, json={"name": "admin"})])  # fmt: skip
    config = ClientConfig("http://127.0.0.1:1", "cf_x", None, None, "test")
    client = ClawfleetClient(config)
    client._http = httpx.Client(
        base_url=config.server, transport=httpx.MockTransport(lambda r: next(answers))
    )
    assert client.whoami() == {"name": "admin"}
