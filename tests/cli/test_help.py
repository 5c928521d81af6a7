"""Every command and argument says what it is for; flags carry no type noise."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from clawfleet.cli.main import app


def _commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(group: Any, path: list[str]) -> None:
        found.append(path)
        if hasattr(group, "commands"):  # a group (Typer vendors its own click classes)
            for name, command in group.commands.items():
                if not command.hidden:
                    walk(command, [*path, name])

    walk(root, [])
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "clawfleet")
def test_help_has_no_type_tag_on_flags(path: list[str]) -> None:
    done = CliRunner().invoke(app, [*path, "--help"], prog_name="clawfleet")
    assert done.exit_code == 0
    assert "<bool>" not in done.stdout


def test_every_argument_and_option_has_help() -> None:
    missing = []
    root = typer.main.get_command(app)
    for path in COMMANDS:
        command: Any = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            if not getattr(param, "help", None) and param.name not in ("help",):
                missing.append(f"clawfleet {' '.join(path)}: {param.name}")
    assert missing == []


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (["describe"], "The resource's name."),
        (["delete"], "KIND/NAME... as -o name prints them"),
        (["serviceaccount", "create"], "The service account's name"),
        (["audit"], "Records of every tenant you may audit."),
        (["run"], "--wait-timeout DURATION"),
    ],
)
def test_help_texts_that_were_missing(path: list[str], text: str) -> None:
    done = CliRunner().invoke(app, [*path, "--help"], prog_name="clawfleet", terminal_width=200)
    assert text in done.stdout
