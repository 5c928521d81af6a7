"""What starting the CLI costs, and what `up` and `db upgrade` leave behind or print."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("clawfleet.server", "fastapi", "sqlalchemy", "uvicorn", "pydantic_settings")


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
        check=True,
    )  # fmt: skip
    return done.stdout


def test_importing_the_cli_loads_neither_the_server_nor_its_libraries() -> None:
    loaded = _python(
        f"import sys, clawfleet.cli.main\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded.strip() == "[]"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_version_and_help_load_neither_the_server_nor_its_libraries(args: list[str]) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from clawfleet.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()) as printed:\n"
        "    try:\n"
        f"        app({args!r}, prog_name='clawfleet')\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print(printed.getvalue())"
    )
    loaded, _, printed = _python(code).partition("\n")
    assert loaded == "[]"
    assert "clawfleet" in printed
