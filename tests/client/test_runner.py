"""The runner's client outlives a control-plane restart, and gives up on one that is gone for
good without filling its log: in fake time, against a transport that refuses every connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

import httpx
import pytest

from clawfleet.client.runner import ControlPlaneUnreachable, RunnerClient, RunnerRefused
from clawfleet.core.errors import Unauthenticated
from clawfleet.testing.clock import FakeClock

SERVER = "http://127.0.0.1:7420"
TOKEN = "cf_runner-token-value"


class ControlPlane:
    """The other end of the wire: down (connections refused), or answering ``status``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.down = True
        self.status = 200
        self.attempts: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.attempts.append(self.clock.monotonic())
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status != 200:
            return httpx.Response(self.status, json={"detail": "no"})
        return httpx.Response(200, json={"commands": [], "stop": False})

    def client(self) -> RunnerClient:
        transport = httpx.MockTransport(self.handle)
        return RunnerClient(SERVER, "i-1", TOKEN, clock=self.clock, transport=transport)


class Log:
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="clawfleet.client.runner")
        self.caplog = caplog

    @property
    def lines(self) -> list[str]:
        return self.caplog.messages


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Log:
    return Log(caplog)


async def test_an_orphan_backs_off_to_a_slow_pace_logs_little_and_gives_up(
    clock: FakeClock, log: Log
) -> None:
    plane = ControlPlane(clock)
    heartbeat = asyncio.ensure_future(plane.client().heartbeat("ready", [], []))
    await clock.run_for(3599)
    assert not heartbeat.done()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(plane.attempts)]
    assert gaps == sorted(gaps)
    assert gaps[0] == pytest.approx(0.1)
    assert max(gaps) == 60
    assert len(plane.attempts) < 80  # a retry every 2 s, as before, would be 1800 in an hour

    await clock.run_for(120)
    with pytest.raises(ControlPlaneUnreachable, match=r"unreachable \(ConnectError\) for 1h0m"):
        await heartbeat
    lines = log.lines
    assert len(lines) <= 15  # the first failure, the slow pace, then one line per 5 minutes
    assert lines[0] == (
        f"the control plane at {SERVER} is unreachable (ConnectError); "
        "retrying with backoff up to every 60s, giving up after 1h0m"
    )
    assert any("retrying every 60s" in line for line in lines)
    assert TOKEN not in " ".join(lines)


async def test_loops_retrying_side_by_side_tell_one_story_and_its_end(
    clock: FakeClock, log: Log
) -> None:
    plane = ControlPlane(clock)
    client = plane.client()
    heartbeat = asyncio.ensure_future(client.heartbeat("ready", [], []))
    commands = asyncio.ensure_future(client.commands(25))
    await clock.run_for(20)
    assert not heartbeat.done() and not commands.done()
    plane.down = False
    await clock.run_for(30)
    assert (await heartbeat)["stop"] is False
    assert await commands == []
    lines = log.lines
    assert len(lines) == 2
    assert "is unreachable (ConnectError)" in lines[0]
    assert lines[1].startswith(f"reached the control plane at {SERVER} again after 2")


async def test_a_refusal_ends_the_call_at_once_and_a_server_error_is_retried(
    clock: FakeClock,
) -> None:
    plane = ControlPlane(clock)
    plane.down = False
    client = plane.client()
    for status, error in ((401, Unauthenticated), (403, Unauthenticated), (409, RunnerRefused)):
        plane.status = status
        with pytest.raises(error):
            await client.heartbeat("ready", [], [])
    assert len(plane.attempts) == 3

    plane.status = 503
    heartbeat = asyncio.ensure_future(client.heartbeat("ready", [], []))
    await clock.run_for(1)
    assert not heartbeat.done()
    plane.status = 200
    await clock.run_for(2)
    assert (await heartbeat)["commands"] == []
