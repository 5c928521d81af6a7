"""A fleet in fake time: the real store (both databases), the real services, a FakeRuntime.

Each test drives the agent controller one pass at a time (``Fleet.reconcile``), plays the
runners itself (``register``, ``heartbeat``, ``claim``) and moves time with the FakeClock, so
nothing sleeps for real. What it checks is what a user sees: the instances API, their events,
and what the runtime was asked to launch and stop.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clawfleet.controllers.agents import AgentController, AgentControllerConfig
from clawfleet.schemas.runner import CompleteIn
from clawfleet.server import ControlPlane
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.fake_runtime import FakeRuntime
from tests.factories import agent

LOST_AFTER = 15.0


class Fleet:
    def __init__(self, plane: ControlPlane, api: httpx.AsyncClient, clock: FakeClock) -> None:
        self.state = plane.app.state.api
        self.api = api
        self.clock = clock
        self.db = plane.db
        self.runtime = FakeRuntime("local", clock=clock)
        self.config = AgentControllerConfig(
            server_url="http://127.0.0.1:9", runner_command=("clawfleet-runner",),
            base_env={}, lost_after=LOST_AFTER,
        )  # fmt: skip
        self.controller = self.new_controller()

    def new_controller(self) -> AgentController:
        """Another controller on the same store and runtime: a restart or a leader change."""
        return AgentController(
            self.db, self.clock, self.state.notifier, agents=self.state.agents,
            instances=self.state.instances, tokens=self.state.tokens,
            dispatcher=self.state.dispatcher, runtimes={"local": self.runtime},
            config=self.config,
        )  # fmt: skip

    # -- the user ---------------------------------------------------------------------------

    async def apply(self, doc: dict[str, Any]) -> None:
        response = await self.api.post("/api/v1/apply", json=doc)
        assert response.status_code in (200, 201), response.text

    async def agent(self, name: str, **spec: Any) -> None:
        await self.apply(agent(name, **spec))

    async def post(self, path: str, body: Any = None) -> Any:
        response = await self.api.post(f"/api/v1{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def delete(self, path: str) -> None:
        response = await self.api.delete(f"/api/v1{path}")
        assert response.status_code == 200, response.text

    async def instances(self, *, stopped: bool = False) -> list[dict[str, Any]]:
        params = {"includeStopped": "true"} if stopped else {}
        response = await self.api.get("/api/v1/instances", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def instance(self, name: str) -> dict[str, Any]:
        response = await self.api.get(f"/api/v1/instances/{name}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def reasons(self, name: str) -> list[str]:
        return [event["reason"] for event in (await self.instance(name))["events"]]

    async def messages(self, name: str, reason: str) -> list[str]:
        events = (await self.instance(name))["events"]
        return [event["message"] for event in events if event["reason"] == reason]

    async def submit(self, agent_name: str, prompt: str = "hi") -> str:
        task = await self.post("/tasks", {"spec": {"agent": agent_name, "prompt": prompt}})
        return str(task["metadata"]["name"])

    async def agent_status(self, name: str) -> dict[str, Any]:
        response = await self.api.get(f"/api/v1/agents/{name}")
        assert response.status_code == 200, response.text
        return dict(response.json()["status"])

    async def agent_reasons(self, name: str) -> list[str]:
        response = await self.api.get(f"/api/v1/agents/{name}/events")
        return [event["reason"] for event in response.json()["items"]]

    # -- the controller and the runners -----------------------------------------------------

    async def reconcile(self, passes: int = 1) -> None:
        for _ in range(passes):
            await self.controller.reconcile_once()

    async def register(self) -> list[str]:
        """Every Starting instance's runner registers; returns their ids."""
        ids = [i["metadata"]["uid"] for i in await self.instances()
               if i["status"]["phase"] == "Starting"]  # fmt: skip
        for instance_id in ids:
            await self.state.dispatcher.protocol.register(instance_id)
        return ids

    async def heartbeat(self, liveness: str = "idle", runs: list[str] | None = None) -> None:
        for item in await self.instances():
            if item["status"]["phase"] in ("Running", "Lost"):
                await self.state.dispatcher.protocol.heartbeat(
                    item["metadata"]["uid"], liveness, runs or [], []
                )

    async def claim(self, instance_id: str) -> str:
        """The runner of ``instance_id`` claims one queued task; returns the run id."""
        [run] = await self.state.dispatcher.claims.claim(instance_id, 1, 0)
        return str(run["id"])

    async def complete(self, instance_id: str, run_id: str) -> None:
        done = CompleteIn.model_validate({"status": "succeeded"})
        await self.state.dispatcher.outcomes.complete(instance_id, run_id, done)

    async def up(self) -> list[dict[str, Any]]:
        """One pass, the new runners register, another pass: the fleet as declared, running."""
        await self.reconcile()
        await self.register()
        await self.reconcile()
        return await self.instances()

    async def run_for(self, seconds: float, *, step: float = 5.0) -> None:
        """Time passes; the runners heartbeat and the controller passes every ``step`` s."""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            await self.heartbeat()
            await self.reconcile()

    async def stop_drained(self) -> None:
        """Runners told to stop exit (as a real runner does once drained); one pass."""
        for item in await self.instances():
            if item["status"]["phase"] == "Stopping":
                self.runtime.exit(item["metadata"]["uid"], 0)
        await self.reconcile()

    def refs(self, items: list[dict[str, Any]]) -> dict[str, str]:
        return {i["metadata"]["name"]: i["status"]["ref"] for i in items}


@pytest.fixture
async def fleet(plane: ControlPlane, api: httpx.AsyncClient, clock: FakeClock) -> Fleet:
    return Fleet(plane, api, clock)
