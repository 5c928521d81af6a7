"""What starting the CLI costs, and what `up` and `db upgrade` leave behind or print."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clawfleet.cli.up import banner
from clawfleet.core.settings import Settings
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


def test_the_banner_says_the_cli_needs_nothing_on_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    text = banner(Settings(), "1.2.3", "SQLite")
    assert "export" not in text
    assert "The CLI on this machine finds it as it is" in text
    assert f"admin token: {tmp_path / '.clawfleet' / 'admin-token'}" in text


def test_the_banner_prints_the_exports_another_terminal_needs(tmp_path: Path) -> None:
    data_dir = tmp_path / "my data"
    text = banner(Settings(port=9000, data_dir=data_dir), "1.2.3", "SQLite")
    assert "ClawFleet 1.2.3 is up at http://127.0.0.1:9000" in text
    assert "  export CLAWFLEET_SERVER=http://127.0.0.1:9000\n" in text
    assert f"  export CLAWFLEET_DATA_DIR='{data_dir}'\n" in text
    assert "finds it as it is" not in text


def test_the_banner_of_a_server_on_another_address_exports_the_token(tmp_path: Path) -> None:
    text = banner(Settings(host="192.0.2.7", data_dir=tmp_path), "1.2.3", "PostgreSQL")
    assert "export CLAWFLEET_SERVER=http://192.0.2.7:7420" in text
    assert f'export CLAWFLEET_TOKEN="$(cat {tmp_path / "admin-token"})"' in text
    assert "CLAWFLEET_DATA_DIR" not in text  # the CLI reads no local token for that address
