"""Secret values and tokens never leave the runner in events, output, errors or log lines.

Planted values go in through the agent program (a real one, and a scripted driver); what the
runner sends to the control plane is captured by a fake of our own ``RunnerClient`` seam.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from clawfleet.adapters.base import AgentBundle, AgentEvent, RunInput
from clawfleet.client.runner import RunnerClient
from clawfleet.core.logging import RedactingFilter
from clawfleet.core.redact import REDACTED, Redactor
from clawfleet.runner.execution import RunExecution
from clawfleet.runner.loops import Runner, sensitive_env_values

CLAIM = {"id": "r-1", "taskId": "t-1", "prompt": "go", "attempt": 1}


class FakeRunnerClient:
    """Records what the runner sends; hands out one claim, then waits until it is completed."""

    def __init__(self, register: dict[str, Any] | None = None) -> None:
        self.registration = register or {}
        self.sent: list[Any] = []
        self.completed = asyncio.Event()
        self.claims = [dict(CLAIM)]
        self.runner: Runner | None = None

    async def register(self) -> dict[str, Any]:
        return self.registration

    async def heartbeat(self, liveness: str, active: list[str], acked: list[int]) -> dict[str, Any]:
        return {"commands": []}

    async def claim(self, max_runs: int, wait: float) -> list[dict[str, Any]]:
        if self.claims:
            return [self.claims.pop()]
        await self.completed.wait()
        return []

    async def commands(self, wait: float) -> list[dict[str, Any]]:
        await self.completed.wait()
        return []

    async def ack(self, ids: list[int]) -> None:
        pass

    async def events(self, run_id: str, events: list[dict[str, Any]]) -> None:
        self.sent.append({"events": events})

    async def complete(self, run_id: str, result: dict[str, Any]) -> dict[str, Any]:
        self.sent.append({"complete": result})
        self.completed.set()
        if self.runner is not None:
            self.runner.stopping.set()
        return {}

    def wire(self) -> str:
        """Everything sent, as the JSON the control plane would receive."""
        return json.dumps(self.sent)

    def completion(self) -> dict[str, Any]:
        return next(item["complete"] for item in self.sent if "complete" in item)  # type: ignore[no-any-return]


class ScriptedDriver:
    """A driver whose agent program says whatever the test wants (the Driver seam)."""

    def __init__(self, events: list[AgentEvent], fail_with: Exception | None = None) -> None:
        self.events = events
        self.fail_with = fail_with

    async def start(self, bundle: AgentBundle) -> None:
        pass

    async def ready(self) -> bool:
        return True

    async def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        for event in self.events:
            yield event
        if self.fail_with is not None:
            raise self.fail_with

    async def steer(self, run_id: str, message: str) -> None:
        pass

    async def cancel(self, run_id: str, grace: float = 3.0) -> None:
        pass

    async def stop(self, grace: float = 5.0) -> None:
        pass


def planted() -> str:
    return "sk-" + secrets.token_urlsafe(18)


async def test_events_output_and_error_of_a_run_are_redacted() -> None:
    secret = planted()
    token = "cf_" + secrets.token_urlsafe(32)  # not registered: tokens are always redacted
    encoded = base64.b64encode(f"user:{secret}".encode()).decode()
    driver = ScriptedDriver(
        [
            AgentEvent("message", {"text": f"my key is {secret}"}),
            AgentEvent("tool_call", {"name": "curl", "args": {"headers": [f"X-Key: {secret}"]}}),
            AgentEvent("log", {"level": "stderr", "text": f"Authorization: Basic {encoded}"}),
            AgentEvent("log", {"level": "stdout", "text": f"runner token {token}"}),
            AgentEvent("usage", {"inputTokens": 12}),
            AgentEvent(
                "result",
                {"status": "succeeded", "output": {"answer": secret, "n": 1}, "error": secret},
            ),
        ]
    )
    client = FakeRunnerClient()
    execution = RunExecution(cast(RunnerClient, client), driver, CLAIM, Redactor([secret]))
    await execution.execute()

    wire = client.wire()
    for leaked in (secret, token, encoded):
        assert leaked not in wire
    assert wire.count(REDACTED) >= 7
    completion = client.completion()
    assert completion["status"] == "succeeded"
    assert completion["output"] == {"answer": REDACTED, "n": 1}
    assert completion["error"] == REDACTED
    assert completion["usage"] == {"inputTokens": 12}  # numbers are left alone


async def test_a_driver_error_quoting_a_secret_is_redacted_in_the_result_and_the_log() -> None:
    secret = planted()
    redactor = Redactor([secret])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("clawfleet.runner.execution")
    logger.addHandler(handler)
    try:
        client = FakeRunnerClient()
        driver = ScriptedDriver([], fail_with=RuntimeError(f"could not parse {secret}"))
        await RunExecution(cast(RunnerClient, client), driver, CLAIM, redactor).execute()
    finally:
        logger.removeHandler(handler)

    completion = client.completion()
    assert completion["failureKind"] == "agent-exited"
    assert completion["error"] == f"driver error: could not parse {REDACTED}"
    assert secret not in client.wire()
    logged = stream.getvalue()
    assert "driver failed on run r-1" in logged
    assert f"RuntimeError: could not parse {REDACTED}" in logged  # the traceback too
    assert secret not in logged


AGENT_SCRIPT = """\
echo "key=$API_KEY level=$LOG_LEVEL region=$REGION"
echo "oops $API_KEY" >&2
printf 'user:%s' "$API_KEY" | base64
"""


REGISTRATION = {
    "instance": {"id": "i-1", "name": "agent-0"},
    "bundle": {
        "adapter": "command",
        "command": ["/bin/sh", "-c", AGENT_SCRIPT],
        "config": {"protocol": "text"},
        "envNames": ["API_KEY", "LOG_LEVEL", "REGION"],
        "secretEnvNames": ["API_KEY"],
    },
    "concurrency": 1,
    "heartbeatSeconds": 0.05,
}


async def test_a_real_agent_program_printing_its_secret_env_is_redacted(tmp_path: Path) -> None:
    secret = planted()
    env = {
        "API_KEY": secret,
        "LOG_LEVEL": "debug",
        "REGION": "eu-west-1-long",
        "PATH": os.environ.get("PATH", os.defpath),
    }
    client = FakeRunnerClient(REGISTRATION)
    runner = Runner(cast(RunnerClient, client), env, tmp_path, Redactor())
    client.runner = runner
    await asyncio.wait_for(runner.run(), 30)

    wire = client.wire()
    assert secret not in wire
    assert base64.b64encode(f"user:{secret}".encode()).decode().rstrip("=") not in wire
    output = client.completion()["output"]
    # Only secretEnv values are sensitive: plain env values, short or long, stay readable.
    assert output.startswith(f"key={REDACTED} level=debug region=eu-west-1-long")
    assert f"oops {REDACTED}" in wire  # stderr comes back as log events


def test_sensitive_env_values_are_the_secret_ones() -> None:
    env = {"A": "secret-value", "B": "plain-but-long", "C": "short"}
    bundle = {"envNames": ["A", "B", "C", "MISSING"], "secretEnvNames": ["A", "MISSING"]}
    assert sensitive_env_values(env, bundle) == ["secret-value"]
    assert sensitive_env_values(env, {"envNames": ["A", "B", "C"]}) == []
