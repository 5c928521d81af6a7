"""`clawfleet up` (serve the control plane in the foreground) and `clawfleet db upgrade`.

Both import the server, the settings and logging only when they run, so that `clawfleet
--help`, `--version` and every client command start without loading FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clawfleet.cli.common import err, handle_errors, out
from clawfleet.client.config import is_local
from clawfleet.core.paths import (
    ADMIN_TOKEN_FILE,
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    ensure_private_dir,
)
from clawfleet.core.version import clawfleet_version

if TYPE_CHECKING:
    from clawfleet.core.settings import Settings

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="CLAWFLEET_CONFIG_FILE",
        metavar="FILE",
        help="YAML settings file (server settings).",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CLAWFLEET_DATA_DIR",
        metavar="DIR",
        help="Where the database, secret key and admin token live (default ~/.clawfleet).",
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CLAWFLEET_DATABASE__URL",
        metavar="URL",
        help="postgresql://user@host:port/db to use PostgreSQL (default: SQLite in the data dir).",
    ),
]


def _settings(
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    host: str | None = None,
    port: int | None = None,
) -> Settings:
    from clawfleet.core.settings import load_settings

    overrides = {"data_dir": data_dir, "host": host, "port": port}
    settings = load_settings(config, **overrides)
    if database_url:
        database = settings.database.model_copy(update={"url": database_url})
        settings = settings.model_copy(update={"database": database})
    return settings


def banner(settings: Settings, version: str, database: str) -> str:
    """What `up` prints once it listens: where it is, and exactly what another terminal on this
    machine must export to reach it when the address or the data dir are not the defaults."""
    data_dir = settings.resolved_data_dir
    token_file = data_dir / ADMIN_TOKEN_FILE
    lines = [
        f"ClawFleet {version} is up at {settings.base_url}",
        f"  data dir:    {data_dir}",
        f"  database:    {database}",
        f"  admin token: {token_file}",
        f"  OpenAPI:     {settings.base_url}/api/v1/openapi.json (send the token)",
    ]
    exports = []
    if settings.base_url != f"http://127.0.0.1:{DEFAULT_PORT}":
        exports.append(f"export CLAWFLEET_SERVER={shlex.quote(settings.base_url)}")
    if not is_local(settings.base_url):  # the CLI reads the local token for loopback only
        exports.append(f'export CLAWFLEET_TOKEN="$(cat {shlex.quote(str(token_file))})"')
    elif data_dir != DEFAULT_DATA_DIR.expanduser().resolve():
        exports.append(f"export CLAWFLEET_DATA_DIR={shlex.quote(str(data_dir))}")
    if exports:
        lines.append("For the CLI in another terminal on this machine:")
        lines += [f"  {line}" for line in exports]
    else:
        lines.append("The CLI on this machine finds it as it is (default address and data dir).")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


@handle_errors
def up(
    host: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS", help="Address to listen on (env CLAWFLEET_HOST; default 127.0.0.1)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(metavar="PORT", help=f"Port (env CLAWFLEET_PORT; default {DEFAULT_PORT})."),
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start the control plane in the foreground (Ctrl-C stops it cleanly)."""
    from clawfleet import server
    from clawfleet.core.logging import configure_logging

    settings = _settings(config, data_dir, database_url, host, port)
    configure_logging(settings.log.level, json_format=settings.log.json_format)
    if logging.getLogger().level > logging.DEBUG:
        # Alembic narrates every migration step at INFO; the banner says what matters.
        logging.getLogger("alembic").setLevel(logging.WARNING)

    def ready(plane: server.ControlPlane) -> None:
        database = "SQLite" if plane.db.is_sqlite else "PostgreSQL"
        text = banner(settings, clawfleet_version(), database)
        out.print(text, markup=False, highlight=False)

    # uvicorn re-raises Ctrl-C after its clean shutdown; stopping is the normal end.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(settings, ready)
    err.print("ClawFleet stopped.")


db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
@handle_errors
def db_upgrade(
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Migrate the database schema to this version (needed for PostgreSQL)."""
    from clawfleet import server

    settings = _settings(config, data_dir, database_url)
    if settings.is_sqlite:  # the database file lives in the data dir; PostgreSQL needs none
        ensure_private_dir(settings.resolved_data_dir)
    before, after = asyncio.run(server.upgrade_database(settings))
    if before == after:
        out.print(f"database is up to date (revision {after})")
    else:
        out.print(f"database upgraded from {before or 'empty'} to revision {after}")
