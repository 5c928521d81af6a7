"""Per-run mode of the command driver: a fresh agent program for every run.

The simplest contract for agent authors: read the task from stdin, write events to stdout, exit.
Everything the program starts lives in its process group and is killed when the run ends, so a
run can never leave work behind on the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from clawfleet.adapters.command_spawn import ProgramStartError, spawn_program
from clawfleet.core.errors import Conflict, InvalidInput, NotFound
from clawfleet.domain.lifecycle import FailureKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ending:
    """Why the driver, not the program, ended a run."""

    kind: FailureKind
    error: str


CANCELLED_ENDING = Ending(FailureKind.CANCELLED, "the run was cancelled")
STOPPED_ENDING = Ending(FailureKind.AGENT_EXITED, "the runner stopped the agent program")


class PerRunPrograms:
    """The programs of the runs in flight, by run id, so steer and cancel can reach them."""

    def __init__(self, *, exit_wait: float) -> None:
        self._exit_wait = exit_wait
        self._runs: dict[str, _RunProgram] = {}

    async def execute(
        self,
        run: RunInput,
        *,
        argv: Sequence[str],
        workdir: Path,
        env: Mapping[str, str],
        protocol: str,
    ) -> AsyncIterator[AgentEvent]:
        if run.run_id in self._runs:
            raise Conflict(f"run {run.run_id!r} is already executing on this instance")
        program = _RunProgram(protocol, self._exit_wait)
        self._runs[run.run_id] = program
        try:
            try:
                program.proc = await spawn_program(argv, workdir=workdir, env=env)
            except ProgramStartError as exc:
                ending = program.ending or Ending(FailureKind.AGENT_EXITED, exc.message)
                yield failed(ending.kind, ending.error)
                return
            if program.ending is not None:  # cancelled while the program was starting
                program.background(program.proc.terminate(self._exit_wait))
            async with contextlib.aclosing(program.events(run)) as events:
                async for event in events:
                    yield event
        finally:
            del self._runs[run.run_id]
            await program.close()

    async def steer(self, run_id: str, message: str) -> None:
        program = self._runs.get(run_id)
        if program is None:
            raise NotFound(f"run {run_id!r} is not active on this instance")
        if program.protocol == "text":
            raise InvalidInput(
                f"run {run_id!r} cannot be steered: its agent program speaks the text protocol, "
                "which reads only the prompt; set config.protocol to 'jsonl' to accept steers"
            )
        proc = program.proc
        if proc is None or not program.accepts_input() or not proc.write(encode_steer(message)):
            raise NotFound(
                f"run {run_id!r} does not accept input now: its program is starting or finishing"
            )

    async def cancel(self, run_id: str, grace: float) -> None:
        program = self._runs.get(run_id)
        if program is not None:
            await program.end(CANCELLED_ENDING, grace)

    async def stop(self, grace: float) -> None:
        programs = list(self._runs.values())
        await asyncio.gather(*(program.end(STOPPED_ENDING, grace) for program in programs))


class _RunProgram:
    """One run's program: read by ``events`` while ``steer`` and ``end`` reach it from elsewhere."""

    def __init__(self, protocol: str, exit_wait: float) -> None:
        self.protocol = protocol
        self.proc: AgentProcess | None = None
        self.ending: Ending | None = None
        self._exit_wait = exit_wait
        self._result_seen = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def events(self, run: RunInput) -> AsyncGenerator[AgentEvent, None]:
        proc = self.proc
        assert proc is not None
        tail = StderrTail()
        collected = OutputCollector("\n" if self.protocol == "text" else "")
        result: AgentEvent | None = None
        if self.protocol == "text":
            proc.write(run.prompt.encode() + b"\n")
            proc.close_stdin()
        else:
            proc.write(encode_input(run))
        while (line := await proc.next_line()) is not None:
            if line.stream == "stderr":
                tail.add(line.text)
                yield stderr_log(line.text)
            elif self.protocol == "text":
                collected.add(line.text)
                yield AgentEvent("message", {"text": line.text})
            elif result is not None or self.ending is not None:
                yield stdout_log(line.text)  # the outcome is settled; later lines are only logs
            else:
                _, event = parse_event_line(line.text)
                if event.type == "result":
                    result = event
                    self._result_seen = True
                    self.background(self._finish_after_result(proc))
                    continue
                if event.type == "message":
                    collected.add(event.data["text"])
                yield event
        yield self._final_result(result, collected, tail)

    def _final_result(
        self, result: AgentEvent | None, collected: OutputCollector, tail: StderrTail
    ) -> AgentEvent:
        if result is not None:
            if result.data["status"] == "succeeded" and "output" not in result.data:
                return succeeded(collected.text())
            return result
        if self.ending is not None:
            return failed(self.ending.kind, self.ending.error)
        assert self.proc is not None
        code = self.proc.returncode
        if code == 0:
            text = collected.text()
            return succeeded(text.rstrip() if self.protocol == "text" else text)
        before = "" if self.protocol == "text" else " without reporting a result"
        return failed(
            FailureKind.AGENT_EXITED,
            f"the agent program {describe_exit(code)}{before}; {tail.describe()}",
        )

    def accepts_input(self) -> bool:
        return (
            self.proc is not None
            and self.proc.accepts_input()
            and not self._result_seen
            and self.ending is None
        )

    async def end(self, ending: Ending, grace: float) -> None:
        """End the run from outside: the program is told, terminated, then killed after grace."""
        if self.ending is None:
            self.ending = ending
        proc = self.proc
        if proc is None:
            return  # still starting: execute terminates it as soon as it exists
        if self.protocol == "jsonl":
            proc.write(encode_cancel())  # SIGTERM follows at once; a quick program may see it
        await proc.terminate(grace)

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Kill whatever is left of the program's process group and release its pipes."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.proc is not None:
            await self.proc.close()

    async def _finish_after_result(self, proc: AgentProcess) -> None:
        proc.close_stdin()
        if not await proc.exited_within(self._exit_wait):
            logger.info("agent program pid %d did not exit after its result", proc.pid)
            await proc.terminate(self._exit_wait)
