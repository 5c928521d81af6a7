"""One typed settings tree for the control plane, and a small one for the runner.

Sources, strongest first: explicit overrides (CLI flags), ``CLAWFLEET_*`` environment variables
(``__`` nests: ``CLAWFLEET_API__MAX_BODY_BYTES=1048576``), an optional YAML config file
(``CLAWFLEET_CONFIG_FILE`` or ``--config``), then defaults. Built once in an entry point and passed
down; library code never reads the environment. The runner reads only its own
``CLAWFLEET_RUNNER_*`` variables (``RunnerSettings``): it runs beside an agent, not beside the
control plane's settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.paths import DEFAULT_DATA_DIR as DEFAULT_DATA_DIR
from clawfleet.core.paths import DEFAULT_PORT as DEFAULT_PORT


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    # Empty means SQLite in the data dir. "postgresql://..." selects PostgreSQL (asyncpg).
    url: str = ""
    pool_size: int = Field(10, ge=1, le=200)


class ApiSettings(_Section):
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(100, ge=1)
    max_page_size: int = Field(1000, ge=1)
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=60)
    # Per-principal token buckets (api/ratelimit.py), so one noisy client cannot starve others.
    # Sized from bench/dispatch.py: one client submitting with 32 requests in flight reaches
    # 200-300 requests/s, and a busy runner makes about 3 requests per run plus heartbeats and
    # long polls, so neither the benchmark nor a full-speed runner is throttled by the defaults.
    rate_limits_enabled: bool = True
    rate_per_second: float = Field(500.0, gt=0)
    rate_burst: int = Field(1000, ge=1)
    # Runners (role "runner") talk a lot: heartbeats, claims, event batches, completions.
    runner_rate_per_second: float = Field(2000.0, gt=0)
    runner_rate_burst: int = Field(4000, ge=1)
    # Failed authentications (bad or revoked tokens) per client address; past them, the
    # address's requests get 429 unless their token is known good (api/ratelimit.py).
    auth_failure_rate_per_second: float = Field(1.0, gt=0)
    auth_failure_burst: int = Field(30, ge=1)


class SecretSettings(_Section):
    # Base64 (urlsafe) of 32 random bytes. Empty means: use or create <data_dir>/secret.key.
    key: SecretStr = SecretStr("")


class DispatchSettings(_Section):
    lease_seconds: float = Field(15.0, gt=0)
    heartbeat_seconds: float = Field(2.0, gt=0)
    lost_after_seconds: float = Field(15.0, gt=0)


_TENANT_QUOTA: dict[str, int | str] = {
    "agents": 100, "instances": 100, "concurrentRuns": 100, "storedBytes": "1Gi",
}  # fmt: skip


class QuotaSettings(_Section):
    # The quota a Tenant gets when its spec sets none (a `quota: {}` means no limits). Keys and
    # values as in a Tenant's spec.quota; checked by its wire model when the server starts.
    # `CLAWFLEET_QUOTAS__TENANT_DEFAULT='{}'` turns the default off.
    tenant_default: dict[str, int | str] = Field(default_factory=lambda: dict(_TENANT_QUOTA))


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_format: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLAWFLEET_",
        env_nested_delimiter="__",
        extra="forbid",
        yaml_file=None,
    )

    # host and port are top-level (CLAWFLEET_HOST, CLAWFLEET_PORT): CLAWFLEET_SERVER is the
    # client's server URL, so no settings section may be called "server".
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    secrets: SecretSettings = SecretSettings()
    dispatch: DispatchSettings = DispatchSettings()
    quotas: QuotaSettings = QuotaSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL: SQLite in the data dir unless a database URL is set."""
        url = self.database.url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{self.resolved_data_dir / 'clawfleet.db'}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - mapping a bind address to a dial address
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


# The variable that carries a runner's token where environments are private to an instance
# (containers, Pods), and the one that names the inherited pipe it comes on instead where they
# are not (local processes: any process of the same user reads /proc/<pid>/environ).
RUNNER_TOKEN_VARIABLE = "CLAWFLEET_RUNNER_TOKEN"  # noqa: S105 - a variable name
RUNNER_TOKEN_FD_VARIABLE = "CLAWFLEET_RUNNER_TOKEN_FD"  # noqa: S105 - a variable name


class RunnerSettings(BaseSettings):
    """What ``clawfleet runner`` is started with. The runtime that launches an instance sets
    ``CLAWFLEET_RUNNER_SERVER``, ``CLAWFLEET_RUNNER_INSTANCE`` and ``CLAWFLEET_RUNNER_TOKEN`` (a
    token good for that one instance); everything else has a default
    (``CLAWFLEET_RUNNER_LOG__LEVEL=debug``, ``CLAWFLEET_RUNNER_GIVE_UP_AFTER_SECONDS=600``)."""

    model_config = SettingsConfigDict(
        env_prefix="CLAWFLEET_RUNNER_", env_nested_delimiter="__", extra="forbid"
    )

    server: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    token: SecretStr
    # A runner whose control plane is gone retries with backoff up to one try per
    # `max_retry_seconds`, and exits (stopping its agent program) after `give_up_after_seconds`
    # without reaching it: long enough to outlive a restart or an upgrade, short enough that
    # orphans do not run for ever.
    max_retry_seconds: float = Field(60.0, gt=0)
    give_up_after_seconds: float = Field(3600.0, gt=0)
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def load_runner_settings(**overrides: Any) -> RunnerSettings:
    """Build the runner's settings from the environment; raise ``ConfigurationError`` naming
    the variable that is missing or wrong."""
    try:
        return RunnerSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_runner_variable(err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid runner environment: {problems} (the runtime that starts a runner sets "
            "CLAWFLEET_RUNNER_SERVER, CLAWFLEET_RUNNER_INSTANCE and CLAWFLEET_RUNNER_TOKEN)"
        ) from exc
    except SettingsError as exc:
        raise ConfigurationError(f"invalid runner environment: {exc}") from exc


def _runner_variable(loc: Sequence[int | str]) -> str:
    return "CLAWFLEET_RUNNER_" + "__".join(str(part) for part in loc).upper()


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings tree; raise ``ConfigurationError`` naming the bad field."""
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigurationError(f"config file {config_file} does not exist")

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    try:
        return _FileSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
    except SettingsError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc
