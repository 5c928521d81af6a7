"""Tenancy and secrecy end to end: audit of every mutation, and a planted secret value and the
runner tokens found nowhere after a full scenario (responses, logs, events, CLI and run output)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.e2e

PLANTED = "planted-secret-6f1c2a9e7d"
PASSWORD = "a long enough password"


# Any ClawFleet token (runner tokens included, which no test can read: see the next test).
TOKEN_SHAPE = re.compile(r"cf_[A-Za-z0-9_-]{40,}")

# What an agent program finds of its runner's token: the runner is its parent.
PROBE = r"""
import os, re, sys
def scan(path):
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        return f"unreadable {exc.errno}"
    return "token" if re.search(rb"CLAWFLEET_RUNNER_TOKEN=|cf_[A-Za-z0-9_-]{40}", data) else "clean"
runner = os.getppid()
lines = [f"parent {open(f'/proc/{runner}/cmdline', 'rb').read().split(bytes(1))[-2].decode()}",
         f"runner-environ {scan(f'/proc/{runner}/environ')}",
         f"runner-mem {scan(f'/proc/{runner}/mem') if os.geteuid() else 'skipped'}",
         f"own-environ {scan('/proc/self/environ')}"]
sys.stdin.read()
print("\n".join(lines))
"""


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_agent_program_cannot_find_its_runners_token(server: ServerProcess) -> None:
    server.start()
    agent = {"kind": "Agent", "metadata": {"name": "probe"},
             "spec": {"adapter": "command", "config": {"protocol": "text"},
                      "command": [sys.executable, "-c", PROBE]}}  # fmt: skip
    with server.http() as http:
        assert http.post("/agents", json=agent).status_code == 201
    done = server.cli("run", "probe", "look around", "--wait")
    probe = dict(line.split(" ", 1) for line in done.stdout.splitlines())

    assert probe["parent"] == "runner"
    # The runner is not dumpable: its environ is root's to read, and holds no token even so.
    assert probe["runner-environ"] == ("clean" if os.geteuid() == 0 else "unreadable 13")
    assert probe["runner-mem"] in ("skipped", "unreadable 13")
    assert probe["own-environ"] == "clean"
    assert server.stop() == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_planted_secret_and_runner_tokens_leak_nowhere(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.start()
    outputs: list[str] = []
    manifest = tmp_path / "leaky.yaml"
    manifest.write_text(
        "apiVersion: clawfleet.dev/v1\nkind: Secret\nmetadata: {name: gh}\n"
        f"spec: {{stringData: {{token: {PLANTED}}}}}\n---\n"
        "apiVersion: clawfleet.dev/v1\nkind: Agent\nmetadata: {name: leaky}\n"
        "spec:\n  adapter: command\n  replicas: 2\n  config: {protocol: text}\n"
        "  command: [sh, -c, 'echo token is $GITHUB_TOKEN; echo $GITHUB_TOKEN >&2; cat']\n"
        "  secretEnv: {GITHUB_TOKEN: {secret: gh, key: token}}\n"
    )
    outputs.append(server.cli("apply", "-f", str(manifest)).stdout)
    with server.http() as http:
        wait_until(
            lambda: http.get("/agents/leaky").json()["status"].get("readyReplicas") == 2,
            30,
            what="ready",
        )
        result = server.cli("run", "leaky", "print your token", "--wait")
        outputs += [result.stdout, result.stderr]
        assert "token is [REDACTED]" in result.stdout
        task = json.loads(server.cli("get", "tasks", "-o", "json").stdout)["items"][0]
        run_id = task["status"]["currentRun"]
        # bad input that carries the value must not echo it
        doc = {"kind": "Secret", "metadata": {"name": "x"},
               "spec": {"stringData": {"k": PLANTED}, "bogus": PLANTED}}  # fmt: skip
        bad = http.post("/secrets", json=doc)
        assert bad.status_code == 422
        responses = [bad.text]
        paths = ["/secrets", "/secrets/gh", "/agents", "/tasks", "/runs", "/instances", "/audit"]
        paths += [f"/runs/{run_id}/events", f"/tasks/{task['metadata']['name']}"]
        for path in paths:
            responses.append(http.get(path).text)
        for item in http.get("/instances").json()["items"]:
            responses.append(http.get(f"/instances/{item['metadata']['name']}/logs").text)
    for args in (("events", run_id), ("logs", f"run/{run_id}"), ("describe", "agent", "leaky"),
                 ("get", "secrets", "-o", "yaml"), ("audit", "-o", "json")):  # fmt: skip
        done = server.cli(*args)
        outputs += [done.stdout, done.stderr]
    assert server.stop() == 0
    files = [server.log_path, *server.data_dir.glob("instances/*/logs/*")]
    texts = {"responses": "\n".join(responses), "cli": "\n".join(outputs)}
    texts |= {str(path): path.read_text(errors="replace") for path in files}
    for where, text in texts.items():
        assert PLANTED not in text, f"the planted secret leaked into {where}"
        assert not TOKEN_SHAPE.search(text), f"a token leaked into {where}"
    assert any("[REDACTED]" in text for text in texts.values())
    assert os.path.exists(server.data_dir / "secret.key")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_mutation_is_audited_with_its_principal(server: ServerProcess) -> None:
    server.start()
    server.cli("apply", "-f", "examples/quickstart.yaml")
    server.cli("agent", "scale", "echo", "2", "-t", "acme", "-p", "web")
    done = server.cli("run", "echo", "hi", "-t", "acme", "-p", "web", "--wait")
    assert done.stdout.strip() == "hi"
    with server.http() as http:
        http.post("/users", json={"name": "mallory", "password": PASSWORD})
        session = httpx.post(f"{server.url}/api/v1/auth/login",
                             json={"username": "mallory", "password": PASSWORD}).json()  # fmt: skip
        evil = {"kind": "Agent", "metadata": {"name": "evil"},
                "spec": {"adapter": "command", "command": ["x"]}}  # fmt: skip
        denied = httpx.post(
            f"{server.url}/api/v1/agents", params={"tenant": "acme", "project": "web"},
            headers={"Authorization": f"Bearer {session['accessToken']}"}, json=evil,
        )  # fmt: skip
        assert denied.status_code == 404
        entries = http.get("/audit", params={"limit": 1000}).json()["items"]
    got = {(e["principal"], e["verb"], e["kind"], e["name"], e["outcome"]) for e in entries}
    for kind, name in (("Tenant", "acme"), ("Project", "web"), ("Secret", "gh"), ("Agent", "echo"),
                       ("Agent", "reviewer")):  # fmt: skip
        assert ("admin", "create", kind, name, "allowed") in got
    assert ("admin", "update", "Agent", "echo", "allowed") in got
    assert any(p == "admin" and v == "create" and k == "Task" for p, v, k, _, _ in got)
    assert ("admin", "create", "User", "mallory", "allowed") in got
    assert ("user:mallory", "create", "Agent", "evil", "denied") in got
