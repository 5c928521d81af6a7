"""What `clawfleet up` prints."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


def test_start_up_output_has_no_migration_chatter(server: ServerProcess) -> None:
    server.start()
    assert server.stop() == 0
    log = server.log_path.read_text()
    assert "is up at" in log
    assert "alembic" not in log.lower()
