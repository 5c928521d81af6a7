"""The `clawfleet` command: global options and the command tree."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from clawfleet.cli import auth, ops, resources, runs, up
from clawfleet.cli.common import GLOBALS, handle_errors, out
from clawfleet.core.version import clawfleet_version

app = typer.Typer(
    name="clawfleet",
    help="ClawFleet: run a fleet of AI agents as declared, and get work done through it.",
    no_args_is_help=True,
    # Plain help: aligned and grep-able, and without a type tag on every flag.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"clawfleet {clawfleet_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    server: Annotated[
        str | None,
        typer.Option(
            "--server", "-s", envvar="CLAWFLEET_SERVER", metavar="URL", help="API server URL."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="Bearer token (prefer CLAWFLEET_TOKEN: flags show in ps).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    GLOBALS.server = server
    GLOBALS.token = token


app.command("up")(up.up)
app.command("apply")(resources.apply)
app.command("get")(resources.get)
app.command("describe")(resources.describe)
app.command("delete")(resources.delete)
app.command("run")(runs.run)
app.command("events")(runs.events)
app.command("logs")(runs.logs)
app.command("result")(runs.result)
app.command("cancel")(runs.cancel)
app.command("steer")(runs.steer)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.command("whoami")(auth.whoami)
app.command("audit")(auth.audit)
app.add_typer(auth.user_app, name="user")
app.add_typer(auth.sa_app, name="serviceaccount")
app.add_typer(ops.instance_app, name="instance")
app.add_typer(ops.agent_app, name="agent")
app.add_typer(up.db_app, name="db")


@app.command("runner", hidden=True)
@handle_errors
def runner() -> None:
    """Run the runner of one instance (started by a runtime, not by hand)."""
    from clawfleet.core.logging import configure_logging
    from clawfleet.core.settings import load_runner_settings
    from clawfleet.runner.main import run_runner
    from clawfleet.runner.secrecy import forbid_inspection, take_token

    # Before the token is read: from now on no process of this user can read our memory.
    forbid_inspection()
    token = take_token(os.environ)
    settings = load_runner_settings(**({"token": token} if token is not None else {}))
    # The token leaves the environment before anything else happens: every process the runner
    # starts (the agent program above all) inherits os.environ, and must never see it.
    os.environ.pop("CLAWFLEET_RUNNER_TOKEN", None)
    configure_logging(settings.log.level, json_format=settings.log.json_format)
    raise typer.Exit(asyncio.run(run_runner(settings, dict(os.environ))))


def main() -> None:
    app()
