"""Long-lived mode of the command driver: one agent program serves many runs, started once.

For programs that are expensive to start or keep state between runs. Runs share the program's
stdin and stdout, so every line carries a ``runId``; a router task reads stdout and hands each
event to the run it names. Lines that name no run in flight are the program's own: they go to
every run in flight as ``log`` events. If the program dies, every run in flight fails with
``agent-exited`` and the runner starts it again through ``start()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from clawfleet.adapters.base import AgentEvent, RunInput
from clawfleet.adapters.command_process import AgentProcess, StderrTail, describe_exit
from clawfleet.adapters.command_protocol import (
    OutputCollector,
    encode_cancel,
    encode_input,
    encode_steer,
    failed,
    parse_event_line,
    stderr_log,
    stdout_log,
    succeeded,
)
from clawfleet.adapters.command_spawn import spawn_program
from clawfleet.core.errors import Conflict, NotFound
from clawfleet.domain.lifecycle import FailureKind

_EOF_GRACE = 1.0  # for a program that closed its stdout but did not exit


class _Died:
    def __init__(self, error: str) -> None:
        self.error = error


class _Wake:
    """Makes a waiting run look at its cancel deadline again."""


class _RoutedRun:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[AgentEvent | _Died | _Wake] = asyncio.Queue()
        self.cancel_deadline: float | None = None
        self.settled = False  # a result or a death has been routed to it

    async def next(self) -> AgentEvent | _Died | _Wake | None:
        """The next item, or None once the cancel deadline has passed."""
        if self.cancel_deadline is None:
            return await self.queue.get()
        remaining = self.cancel_deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(self.queue.get(), max(remaining, 0.0))
        except TimeoutError:
            return None


class LongLivedProgram:
    """The one program of a long-lived agent and the runs in flight on it, by run id."""

    def __init__(self) -> None:
        self._proc: AgentProcess | None = None
        self._router: asyncio.Task[None] | None = None
        self._runs: dict[str, _RoutedRun] = {}
        self._finished: deque[str] = deque(maxlen=1024)  # late lines for these are dropped
        self._tail = StderrTail()
        self._stopping = False
        self._dead = False

    @property
    def running(self) -> bool:
        return self._router is not None and not self._dead

    async def start(self, argv: Sequence[str], *, workdir: Path, env: Mapping[str, str]) -> None:
        """Start the program unless it runs; raises ProgramStartError."""
        if self.running:
            return
        await self._release()
        self._proc = await spawn_program(argv, workdir=workdir, env=env)
        self._tail = StderrTail()
        self._stopping = self._dead = False
        self._router = asyncio.create_task(self._route(self._proc))

    async def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        if run.run_id in self._runs:
            raise Conflict(f"run {run.run_id!r} is already executing on this instance")
        if not self.running:
            yield failed(
                FailureKind.AGENT_EXITED, "the agent program is not running; the runner restarts it"
            )
            return
        routed = self._runs[run.run_id] = _RoutedRun()
        collected = OutputCollector()
        try:
            self._write(encode_input(run))  # if the program is gone, the router says so
            while True:
                item = await routed.next()
                if isinstance(item, _Wake):
                    continue
                cancelled = routed.cancel_deadline is not None
                if item is None or (
                    cancelled and (isinstance(item, _Died) or item.type == "result")
                ):
                    yield failed(FailureKind.CANCELLED, "the run was cancelled")
                    return
                if isinstance(item, _Died):
                    yield failed(FailureKind.AGENT_EXITED, item.error)
                    return
                if item.type == "result":
                    complete = "output" in item.data or item.data["status"] != "succeeded"
                    yield item if complete else succeeded(collected.text())
                    return
                if item.type == "message":
                    collected.add(item.data["text"])
                yield item
        finally:
            del self._runs[run.run_id]
            self._finished.append(run.run_id)

    async def steer(self, run_id: str, message: str) -> None:
        routed = self._runs.get(run_id)
        if routed is None or routed.settled or routed.cancel_deadline is not None:
            raise NotFound(f"run {run_id!r} is not active on this instance")
        if not self._write(encode_steer(message, run_id)):
            raise NotFound(f"run {run_id!r} cannot take input: its agent program has exited")

    async def cancel(self, run_id: str, grace: float) -> None:
        """Ask the program to drop the run; the run ends when it answers or after ``grace``."""
        routed = self._runs.get(run_id)
        if routed is None or routed.settled or routed.cancel_deadline is not None:
            return  # unknown, already ending, or its result is in: nothing to cancel
        routed.cancel_deadline = asyncio.get_running_loop().time() + grace
        routed.queue.put_nowait(_Wake())
        self._write(encode_cancel(run_id))

    def owns(self, run_id: str) -> bool:
        return run_id in self._runs

    async def stop(self, grace: float) -> None:
        proc = self._proc
        if proc is not None and self.running:
            self._stopping = True
            proc.close_stdin()
            await proc.terminate(grace)
        await self._release()

    async def _route(self, proc: AgentProcess) -> None:
        try:
            while (line := await proc.next_line(end_at_stdout_eof=True)) is not None:
                if line.stream == "stderr":
                    self._tail.add(line.text)
                    self._broadcast(stderr_log(line.text))
                else:
                    self._dispatch(line.text)
        finally:
            self._dead = True
            error = self._death_error(proc)
            for routed in self._runs.values():
                routed.settled = True
                routed.queue.put_nowait(_Died(error))
            await proc.terminate(_EOF_GRACE)  # nothing the program started may stay
            await proc.close()

    def _dispatch(self, text: str) -> None:
        run_id, event = parse_event_line(text)
        routed = self._runs.get(run_id) if run_id is not None else None
        if routed is not None and not routed.settled:
            routed.settled = event.type == "result"
            routed.queue.put_nowait(event)
        elif run_id is None or run_id not in self._finished:
            self._broadcast(stdout_log(text))

    def _death_error(self, proc: AgentProcess) -> str:
        if self._stopping:
            return "the runner stopped the agent program"
        if proc.returncode is None:
            return (
                "the agent program closed its stdout while the run was in flight, so it can "
                "answer no run; the driver stopped it"
            )
        return (
            f"the agent program {describe_exit(proc.returncode)} while the run was in flight; "
            + self._tail.describe()
        )

    def _broadcast(self, event: AgentEvent) -> None:
        for routed in self._runs.values():
            if not routed.settled:
                routed.queue.put_nowait(event)

    def _write(self, data: bytes) -> bool:
        return self._proc is not None and self.running and self._proc.write(data)

    async def _release(self) -> None:
        """Reap what is left of a program that has ended."""
        if self._router is not None:
            await asyncio.gather(self._router, return_exceptions=True)
        if self._proc is not None:
            await self._proc.close()
        self._router = self._proc = None
