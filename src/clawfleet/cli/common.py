"""What every command shares: the client from flags and environment, and error reporting."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from clawfleet.client import ApiError, ClawfleetClient, load_client_config
from clawfleet.core.errors import ClawfleetError

P = ParamSpec("P")
R = TypeVar("R")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        metavar="TENANT",
        help="Tenant to act in (default: your tenant, or 'default').",
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project", "-p", metavar="PROJECT", help="Project to act in (default: 'default')."
    ),
]


def output_option(*formats: str) -> Any:
    """An --output/-o option whose help names exactly the formats the command accepts."""
    listed = ", ".join(formats[:-1]) + f" or {formats[-1]}"
    return Annotated[
        str, typer.Option("--output", "-o", help=f"Output format: {listed}.", metavar="FORMAT")
    ]


OutputOpt = output_option("table", "wide", "json", "yaml", "name")
ResultOutputOpt = output_option("name", "json", "yaml")
DocOutputOpt = output_option("table", "json", "yaml")
EventsOutputOpt = output_option("table", "json")


class Globals:
    server: str | None = None
    token: str | None = None


GLOBALS = Globals()


def make_client(tenant: str | None = None, project: str | None = None) -> ClawfleetClient:
    config = load_client_config(
        os.environ, server=GLOBALS.server, token=GLOBALS.token, tenant=tenant, project=project
    )
    return ClawfleetClient(config)


def fail(message: str, *, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def print_error(exc: ClawfleetError, prefix: str = "") -> None:
    err.print(f"[red]error:[/red] {escape(prefix + exc.message)}", highlight=False)
    if isinstance(exc, ApiError):
        for field in exc.field_errors:
            path, message = field.get("path", ""), field.get("message", "")
            # a field error the message already tells is not worth a second line
            if path and path not in exc.message and message not in exc.message:
                err.print(f"  {path}: {message}", highlight=False, markup=False)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn ClawfleetError into a one-line message and exit status 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ClawfleetError as exc:
            print_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def check_output(
    fmt: str, allowed: tuple[str, ...] = ("table", "wide", "json", "yaml", "name")
) -> str:
    if fmt not in allowed:
        fail(f"unknown output format {fmt!r}; use one of {', '.join(allowed)}", code=2)
    return fmt


def stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
