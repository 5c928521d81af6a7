"""`clawfleet up` (serve the control plane in the foreground) and `clawfleet db upgrade`.

Both import the server, the settings and logging only when they run, so that `clawfleet
--help`, `--version` and every client command start without loading FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clawfleet.cli.common import err, handle_errors, out
from clawfleet.core.paths import DEFAULT_PORT, ensure_private_dir
from clawfleet.core.version import clawfleet_version

if TYPE_CHECKING:
    from clawfleet.core.settings import Settings

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="CLAWFLEET_CONFIG_FILE", help="YAML settings file (server settings)."
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="CLAWFLEET_DATA_DIR",
        help="Where the database, secret key and admin token live (default ~/.clawfleet).",
    ),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CLAWFLEET_DATABASE__URL",
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


@handle_errors
def up(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (env CLAWFLEET_HOST; default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help=f"Port (env CLAWFLEET_PORT; default {DEFAULT_PORT})."),
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
        out.print(
            f"ClawFleet {clawfleet_version()} is up at [bold]{settings.base_url}[/bold]\n"
            f"  data dir:    {settings.resolved_data_dir}\n"
            f"  database:    {database}\n"
            f"  admin token: {settings.resolved_data_dir / 'admin-token'}"
            " (the CLI on this machine finds it)\n"
            f"  OpenAPI:     {settings.base_url}/api/v1/openapi.json (send the token)\n"
            "Press Ctrl-C to stop.",
            highlight=False,
        )

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
