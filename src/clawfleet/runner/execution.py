"""One run on the runner: drive the adapter, stream events in batches, enforce the timeout,
and report the result exactly once.

Everything a run sends to the control plane (event data, the output and the error) passes the
runner's ``Redactor`` first: an agent program that prints its secret environment, or a driver
error that quotes it, must not put the values into stored events. It also fits the control
plane's bounds on free-form JSON (``schemas/json_values.py``): event data or an output the
server would refuse is replaced by a note saying why, so a hostile or broken agent program fails
its run instead of getting its runner refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from clawfleet.adapters.base import Driver, RunInput
from clawfleet.client.runner import RunnerClient
from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.redact import Redactor
from clawfleet.schemas.json_values import json_problem

log = logging.getLogger(__name__)

BATCH_MAX = 256
COALESCE_SECONDS = 0.005


class RunExecution:
    def __init__(
        self,
        client: RunnerClient,
        driver: Driver,
        claim: dict[str, Any],
        redactor: Redactor | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.driver = driver
        self.clock = clock or SystemClock()
        # Without values of its own a Redactor still blanks out bearer tokens.
        self.redactor = redactor if redactor is not None else Redactor()
        self.run_id: str = claim["id"]
        self.input = RunInput(
            run_id=claim["id"],
            task_id=claim["taskId"],
            prompt=claim.get("prompt") or "",
            data=claim.get("data") or {},
            attempt=int(claim.get("attempt") or 1),
        )
        self.timeout: float | None = claim.get("timeoutSeconds")
        self.cancel_reason: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._seq = 0
        self._wake = asyncio.Event()

    def add_event(self, kind: str, data: dict[str, Any]) -> None:
        """Queue one event for the next batch; its data is redacted here, before it is kept."""
        self._seq += 1
        if problem := json_problem(data):
            data = {"dropped": f"the event's data {problem[1]}"}
        self._pending.append(
            {"seq": self._seq, "type": kind, "data": self.redactor.redact_obj(data)}
        )
        self._wake.set()

    async def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        await self.driver.cancel(self.run_id)

    async def steer(self, message: str) -> None:
        try:
            await self.driver.steer(self.run_id, message)
        except Exception as exc:  # report, do not crash the run
            self.add_event("log", {"level": "warning", "text": f"steer not delivered: {exc}"})

    async def _cancel_after(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        await self.cancel("timeout")

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await self.clock.sleep(COALESCE_SECONDS)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:BATCH_MAX]
            await self.client.events(self.run_id, batch)
            del self._pending[: len(batch)]

    async def execute(self) -> None:
        flusher = asyncio.create_task(self._flush_loop())
        try:
            result, usage = await self._drive()
            self.add_event("result", result)
        finally:
            # The flusher may be mid-batch; stop it, then send what is left with the result.
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if len(self._pending) > BATCH_MAX:
            await self._flush()
        await self.client.complete(self.run_id, {
            "events": self._pending,
            "status": result.get("status", "failed"),
            "output": result.get("output"),
            "failureKind": result.get("failureKind"),
            "error": result.get("error"),
            "usage": usage or None,
        })  # fmt: skip

    async def _drive(self) -> tuple[dict[str, Any], dict[str, int]]:
        """Run the attempt through the driver: its result (redacted) and summed usage."""
        result: dict[str, Any] = {"status": "failed", "failureKind": "invalid-output",
                                  "error": "the agent ended without a result"}  # fmt: skip
        usage: dict[str, int] = {}
        timer = asyncio.ensure_future(self._cancel_after(self.timeout)) if self.timeout else None
        try:
            async for event in self.driver.execute(self.input):
                data = dict(event.data)
                if event.type == "result":
                    result = data
                    continue
                if event.type == "usage":
                    for name, value in data.items():
                        if isinstance(value, int):
                            usage[name] = usage.get(name, 0) + value
                self.add_event(event.type, data)
        except Exception as exc:  # a driver bug must still end the run
            log.exception("driver failed on run %s", self.run_id)
            result = {
                "status": "failed",
                "failureKind": "agent-exited",
                "error": f"driver error: {exc}",
            }
        finally:
            if timer is not None:
                timer.cancel()
        if self.cancel_reason == "timeout":
            result = {"status": "failed", "failureKind": "timeout",
                      "error": f"the run exceeded its timeout of {self.timeout:g}s"}  # fmt: skip
        elif self.cancel_reason == "shutdown":
            result = {
                "status": "failed",
                "failureKind": "runner-lost",
                "error": "the runner is shutting down",
            }
        return self.redactor.redact_obj(_within_bounds(result)), usage


def _within_bounds(result: dict[str, Any]) -> dict[str, Any]:
    """``result``, or a failed one saying why the control plane would refuse its output."""
    if problem := json_problem(result.get("output")):
        return {"status": "failed", "failureKind": "invalid-output",
                "error": f"the agent's output {problem[1]}"}  # fmt: skip
    error = result.get("error")
    if isinstance(error, str) and "\x00" in error:
        return {**result, "error": error.replace("\x00", "\ufffd")}
    return result
