"""A mistyped program name, as a new user makes it: the cause is where they look, not in a
traceback (real server, real runners, the real CLI)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.e2e

NOT_FOUND = "the agent program 'nosuchprogram' was not found on the agent's PATH"


def test_a_program_not_on_path_shows_its_cause(server: ServerProcess) -> None:
    server.start()
    with server.http() as http:
        _check_the_cause_is_shown(server, http)
    assert server.stop() == 0


def _check_the_cause_is_shown(server: ServerProcess, http: httpx.Client) -> None:
    agent = {"apiVersion": "clawfleet.dev/v1", "kind": "Agent", "metadata": {"name": "typo"},
             "spec": {"adapter": "command", "command": ["nosuchprogram"]}}  # fmt: skip
    assert http.post("/apply", json=agent).status_code == 201

    def crashed() -> dict[str, Any] | None:
        for item in http.get("/instances").json()["items"]:
            if item["status"]["phase"] == "CrashLoop":
                return item  # type: ignore[no-any-return]
        return None

    instance = wait_until(crashed, 30, what="the instance to crash")
    assert instance["status"]["lastError"].startswith(NOT_FOUND)

    def described() -> str | None:
        # The agent shows its instances' error while one waits out its crash-loop backoff.
        text = server.cli("describe", "agent", "typo").stdout
        assert "the runner exited" not in text
        return text if NOT_FOUND in text and "phase: Degraded" in text else None

    wait_until(described, 60, what="describe agent to show the cause")
    name = instance["metadata"]["name"]
    events = server.cli("describe", "instance", name).stdout
    assert "StartFailed" in events
    crash = next(line for line in events.splitlines() if "Crashed" in line)
    assert NOT_FOUND in crash  # not "the runner exited (code 5)"

    log = server.cli("logs", f"instance/{name}").stdout
    assert NOT_FOUND in log
    assert "Traceback" not in log
