"""The CLI talks to the server through the client's public methods only (review §7)."""

from __future__ import annotations

import ast
from pathlib import Path

import clawfleet.cli

CLI = Path(clawfleet.cli.__file__).parent


def test_the_cli_touches_no_private_member_of_another_object() -> None:
    found = []
    for module in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")
            ):
                found.append(f"{module.name}:{node.lineno} .{node.attr}")
    assert found == []
