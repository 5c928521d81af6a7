"""The e2e harness says why a start failed (B11): exit code or liveness, probe, log tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from clawfleet.testing.postgres import free_port
from clawfleet.testing.server_process import ServerProcess, ServerStartError, start_deadline

pytestmark = pytest.mark.e2e


def _server(tmp_path: Path, **env: str) -> ServerProcess:
    return ServerProcess(
        data_dir=tmp_path / "data", port=free_port(), log_path=tmp_path / "server.log",
        extra_env=env,
    )  # fmt: skip


def test_a_server_that_exits_reports_its_code_and_log(tmp_path: Path) -> None:
    server = _server(tmp_path, CLAWFLEET_API__MAX_BODY_BYTES="12")  # below the minimum
    with pytest.raises(ServerStartError) as caught:
        server.start()
    message = str(caught.value)
    assert "exited with code 1" in message
    assert "api.max_body_bytes" in message  # the log tail: the server's own reason
    assert "last /readyz probe" in message


def test_a_server_that_is_not_ready_in_time_says_it_still_runs(tmp_path: Path) -> None:
    server = _server(tmp_path)
    try:
        with pytest.raises(ServerStartError) as caught:
            server.start(timeout=0)
        assert server.proc is not None and server.proc.poll() is None
        assert f"is still running (pid {server.proc.pid}) but not ready" in str(caught.value)
    finally:
        server.kill()


def test_the_start_deadline_grows_with_load_within_bounds() -> None:
    assert 45 <= start_deadline() <= 100
    assert start_deadline(base=1000, cap=100) == 100
