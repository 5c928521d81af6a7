"""What `clawfleet up` prints, and that another terminal can act on it word for word."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, ServerProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


def _exports(log: str) -> dict[str, str]:
    found = {}
    for line in log.splitlines():
        words = shlex.split(line.strip()) if line.strip().startswith("export ") else []
        if words:
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


def _banner(server: ServerProcess) -> str | None:
    log = server.log_path.read_text()
    return log if "Press Ctrl-C to stop." in log else None


def test_the_banner_exports_what_another_terminal_needs(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.start()
    # /readyz may answer a moment before the banner is printed
    log = wait_until(lambda: _banner(server), 10, what="the start banner")
    exports = _exports(log)
    assert exports == {
        "CLAWFLEET_SERVER": server.url,
        "CLAWFLEET_DATA_DIR": str(server.data_dir.resolve()),
    }
    home = tmp_path / "another-home"  # nothing configured there: only the exports
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWFLEET_")}
    env |= {"HOME": str(home), **exports}
    done = subprocess.run(
        [sys.executable, "-m", "clawfleet", "get", "tenants"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "default" in done.stdout


def test_start_up_output_has_no_migration_chatter(server: ServerProcess) -> None:
    server.start()
    assert server.stop() == 0
    log = server.log_path.read_text()
    assert "is up at" in log
    assert "alembic" not in log.lower()
