"""The foundation's acceptance path, as a user runs it: real server, real CLI, real database."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.e2e.conftest import REPO, ServerProcess

pytestmark = pytest.mark.e2e

QUICKSTART = str(REPO / "examples" / "quickstart.yaml")
SECRET_VALUE = "ghp_example_not_a_real_token"


def test_quickstart_apply_get_restart(server: ServerProcess) -> None:
    if server.database_url:
        # PostgreSQL is migrated by an explicit command, never implicitly by `up`.
        upgraded = server.cli("db", "upgrade", "--database-url", server.database_url)
        assert "upgraded from empty to revision" in upgraded.stdout
    server.start(upgrade=False)

    first = server.cli("apply", "-f", QUICKSTART)
    assert first.stdout.splitlines() == [
        "tenant/acme created",
        "project/web created",
        "secret/gh created",
        "agent/echo created",
        "agent/reviewer created",
    ]
    agents = json.loads(server.cli("get", "agents", "-t", "acme", "-p", "web", "-o", "json").stdout)
    assert [a["metadata"]["name"] for a in agents["items"]] == ["echo", "reviewer"]
    again = server.cli("apply", "-f", QUICKSTART)
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines())
    assert len(again.stdout.splitlines()) == 5

    shown = server.cli("get", "secrets", "-A", "-o", "yaml").stdout
    described = server.cli("describe", "secret", "gh", "-t", "acme", "-p", "web").stdout
    table = server.cli("get", "agents", "-A").stdout
    assert "reviewer" in table and "command" in table
    assert "token" in described

    assert server.stop() == 0  # Ctrl-C shuts down cleanly
    server.start()  # nothing was only in memory
    after = json.loads(server.cli("get", "agents", "-A", "-o", "json").stdout)
    assert [a["metadata"]["name"] for a in after["items"]] == ["echo", "reviewer"]

    def declared(items: list[dict[str, object]]) -> list[tuple[object, ...]]:
        # status moves (the controllers run the agents); what was declared must not
        return [(i["metadata"]["uid"], i["metadata"]["generation"], i["spec"]) for i in items]  # type: ignore[index]

    assert declared(agents["items"]) == declared(after["items"])
    third = server.cli("apply", "-f", QUICKSTART)
    assert all(line.endswith(" unchanged") for line in third.stdout.splitlines())
    assert server.stop() == 0

    admin_token = (server.data_dir / "admin-token").read_text().strip()
    log = server.log_path.read_text()
    assert "ClawFleet" in log and "POST /api/v1/apply 201" in log
    for output in (log, shown, described, table, first.stdout, first.stderr):
        assert SECRET_VALUE not in output
        assert admin_token not in output


def test_bad_input_from_the_cli(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.start()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: clawfleet.dev/v1\nkind: Agent\nmetadata: {name: a1}\n"
        "spec: {adapter: command, command: [cat], replicass: 3}\n"
    )
    result = server.cli("apply", "-f", str(bad), check=False)
    assert result.returncode == 1
    assert "spec.replicass" in result.stderr and "unknown field" in result.stderr
    assert "Traceback" not in result.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Agent\n  metadata: [\n")
    result = server.cli("apply", "-f", str(broken), check=False)
    assert result.returncode == 1 and "invalid YAML" in result.stderr

    env_token = server.env() | {"CLAWFLEET_TOKEN": "cf_wrong"}
    import subprocess
    import sys

    denied = subprocess.run(
        [sys.executable, "-m", "clawfleet", "get", "agents"],
        env=env_token, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert denied.returncode == 1 and "invalid token" in denied.stderr

    missing = server.cli("get", "agent", "nope", check=False)
    assert missing.returncode == 1
    assert "agent 'nope' in tenant 'default', project 'default' not found" in missing.stderr
    unknown = server.cli("get", "gadgets", check=False)
    assert unknown.returncode == 2 and "unknown kind" in unknown.stderr


def test_real_http_limits_and_auth(server: ServerProcess) -> None:
    server.start()
    token = (server.data_dir / "admin-token").read_text().strip()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/api/v1/agents").status_code == 401
        big = {
            "kind": "Agent",
            "metadata": {"name": "big"},
            "spec": {
                "adapter": "command",
                "command": ["x"],
                "instructions": "x" * (10 * 1024 * 1024),
            },
        }
        response = http.post(
            "/api/v1/agents", json=big, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload-too-large"
        assert (
            http.get("/api/v1/agents/big", headers={"Authorization": f"Bearer {token}"}).status_code
            == 404
        )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_needs_an_explicit_upgrade(server: ServerProcess) -> None:
    with pytest.raises(AssertionError, match="clawfleet db upgrade"):
        server.start(upgrade=False)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_busy_port_is_a_clear_error(server: ServerProcess) -> None:
    server.start()
    second = server.cli(
        "up", "--port", str(server.port), "--data-dir", str(server.data_dir / "b"), check=False
    )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_ctrl_c_stops_an_idle_server_promptly(server: ServerProcess) -> None:
    # Regression: with no agents, a controller loop that never suspended starved the shutdown.
    server.start()
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 10
