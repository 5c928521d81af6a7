"""What starting the CLI costs, and what `up` and `db upgrade` leave behind or print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawfleet.testing.postgres import PostgresCluster
from tests.conftest import new_pg_database

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


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWFLEET_")}
    return env | {"HOME": str(home)}


def test_db_upgrade_on_postgres_creates_no_data_dir(
    pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = new_pg_database(pg_cluster, migrated=False)
    done = subprocess.run(
        [sys.executable, "-m", "clawfleet", "db", "upgrade", "--database-url", url],
        capture_output=True, text=True, timeout=120, env=_clean_env(home), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "upgraded from empty to revision" in done.stdout
    assert list(home.iterdir()) == []  # no ~/.clawfleet, nothing else either


def test_db_upgrade_on_sqlite_makes_its_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "clawfleet", "db", "upgrade", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120, env=_clean_env(tmp_path), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (data_dir / "clawfleet.db").is_file()
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
