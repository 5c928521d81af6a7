"""Where the CLI finds its server and token.

Strongest first: explicit flags, ``CLAWFLEET_SERVER`` / ``CLAWFLEET_TOKEN`` /
``CLAWFLEET_TENANT`` / ``CLAWFLEET_PROJECT``, the client config file (``CLAWFLEET_CONFIG`` or
``~/.clawfleet/config``, YAML with the keys ``server``, ``token``, ``tenant``, ``project``), then
defaults. When no token is configured and the server is on this machine, the local admin token
is read from the data dir (``CLAWFLEET_DATA_DIR`` or ``~/.clawfleet``). The local token is never
sent to a server on another host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.paths import (
    ADMIN_TOKEN_FILE,
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    ensure_private_dir,
    read_private_file,
    write_private_file,
)

_KEYS = {"server", "token", "refresh_token", "tenant", "project"}


@dataclass(frozen=True)
class ClientConfig:
    server: str
    token: str | None
    tenant: str | None
    project: str | None
    token_source: str
    refresh_token: str | None = None
    config_path: Path | None = None
    # Where the local admin token was looked for (None when the server is not on this machine).
    admin_token_path: Path | None = None

    def __repr__(self) -> str:
        return (
            f"ClientConfig(server={self.server!r}, tenant={self.tenant!r}, "
            f"project={self.project!r}, token_source={self.token_source!r})"
        )


def is_local(server: str) -> bool:
    host = urlsplit(server).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_config_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"client config {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigurationError(f"client config {path} must be a mapping of {sorted(_KEYS)}")
    unknown = set(doc) - _KEYS
    if unknown:
        raise ConfigurationError(
            f"client config {path} has unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}"
        )
    return {k: str(v) for k, v in doc.items() if v is not None}


def load_client_config(
    env: Mapping[str, str],
    *,
    server: str | None = None,
    token: str | None = None,
    tenant: str | None = None,
    project: str | None = None,
) -> ClientConfig:
    home_dir = Path(env.get("CLAWFLEET_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()
    config_path = config_file_path(env)
    file = _read_config_file(config_path)
    default_server = f"http://127.0.0.1:{env.get('CLAWFLEET_PORT') or DEFAULT_PORT}"
    chosen_server = (
        server or env.get("CLAWFLEET_SERVER") or file.get("server") or default_server
    ).rstrip("/")
    if urlsplit(chosen_server).scheme not in ("http", "https"):
        raise ConfigurationError(
            f"server {chosen_server!r} is not an http(s) URL, e.g. http://127.0.0.1:{DEFAULT_PORT}"
        )
    chosen_token, source = token, "--token"
    if not chosen_token and env.get("CLAWFLEET_TOKEN"):
        chosen_token, source = env["CLAWFLEET_TOKEN"], "CLAWFLEET_TOKEN"
    if not chosen_token and file.get("token"):
        chosen_token, source = file["token"], str(config_path)
    admin_token_path = home_dir / ADMIN_TOKEN_FILE if is_local(chosen_server) else None
    if not chosen_token and admin_token_path is not None:
        chosen_token = read_private_file(admin_token_path)
        source = str(admin_token_path)
    if not chosen_token:
        source = "none"
    return ClientConfig(
        server=chosen_server,
        token=chosen_token,
        tenant=tenant or env.get("CLAWFLEET_TENANT") or file.get("tenant"),
        project=project or env.get("CLAWFLEET_PROJECT") or file.get("project"),
        token_source=source,
        refresh_token=file.get("refresh_token") if source == str(config_path) else None,
        config_path=config_path,
        admin_token_path=admin_token_path,
    )


def config_file_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("CLAWFLEET_CONFIG") or DEFAULT_DATA_DIR / "config").expanduser()


def save_session(path: Path, server: str, token: str, refresh_token: str | None) -> None:
    """Store a session in the client config file (mode 0600), keeping its other keys."""
    doc: dict[str, str] = _read_config_file(path) if path.exists() else {}
    doc.update(server=server, token=token)
    if refresh_token:
        doc["refresh_token"] = refresh_token
    else:
        doc.pop("refresh_token", None)
    ensure_private_dir(path.parent)
    write_private_file(path, yaml.safe_dump(doc, sort_keys=True))


def forget_session(path: Path) -> None:
    if not path.exists():
        return
    doc = _read_config_file(path)
    doc.pop("token", None)
    doc.pop("refresh_token", None)
    write_private_file(path, yaml.safe_dump(doc, sort_keys=True))
