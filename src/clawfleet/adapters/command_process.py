"""One running agent program: its output lines as they arrive, its exit, its stdin.

Built on a plain ``asyncio.SubprocessProtocol`` rather than ``asyncio.subprocess.Process``: the
latter's ``wait()`` also waits for every pipe to close, so a background child that inherited
stdout would hang the run after the program itself exited. Here the exit is known the moment it
happens, output may trail it for ``DRAIN_AFTER_EXIT`` seconds, and signals go to the program's
whole process group. Lines are capped in length, and reading pauses while too much is unread,
so a program cannot make the runner buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

STDOUT_LINE_MAX = 1024 * 1024
STDERR_LINE_MAX = 64 * 1024
DRAIN_AFTER_EXIT = 0.5  # how long output may trail the exit of the program's main process
_UNREAD_MAX = 4 * 1024 * 1024  # characters of unread output before reading pauses
_KILL_WAIT = 5.0  # SIGKILL is final; this only bounds a process stuck in the kernel


@dataclass(frozen=True)
class OutputLine:
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class _Closed:
    fd: int


class _Exited:
    pass


class AgentProcess:
    """Create with ``spawn_program`` (``command_spawn``); always ``close()`` when done."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.pid: int = transport.get_pid()
        self._drain_deadline: float | None = None
        self._closed: set[int] = set()
        self._exited = False
        self._ended = False

    @classmethod
    async def start(
        cls, loop: asyncio.AbstractEventLoop, argv: Sequence[str], **popen: Any
    ) -> AgentProcess:
        transport, protocol = await loop.subprocess_exec(
            _Protocol,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            **popen,
        )
        return cls(transport, protocol)

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    async def next_line(self, *, end_at_stdout_eof: bool = False) -> OutputLine | None:
        """The next output line; None (then always None) once the output has ended.

        It ends when the program has exited and both streams are closed, or ``DRAIN_AFTER_EXIT``
        seconds after the exit if something it started still holds them open. With
        ``end_at_stdout_eof`` it also ends that long after stdout closes, exited or not.
        """
        while not self._ended:
            item = await self._next_item()
            if item is None or isinstance(item, OutputLine):
                return item
            now = asyncio.get_running_loop().time()
            if isinstance(item, _Exited):
                self._exited = True
                self._drain_deadline = now + DRAIN_AFTER_EXIT
            else:
                self._closed.add(item.fd)
                if end_at_stdout_eof and item.fd == 1 and self._drain_deadline is None:
                    self._drain_deadline = now + DRAIN_AFTER_EXIT
            if self._exited and len(self._closed) == 2:
                self._ended = True
        return None

    async def _next_item(self) -> OutputLine | _Closed | _Exited | None:
        """The next queued item; None when the drain deadline has passed with nothing queued."""
        queue = self._protocol.queue
        if queue.empty() and self._drain_deadline is not None:
            remaining = self._drain_deadline - asyncio.get_running_loop().time()
            try:
                item = await asyncio.wait_for(queue.get(), max(remaining, 0.0))
            except TimeoutError:
                self._ended = True
                return None
        else:
            item = await queue.get()
        if isinstance(item, OutputLine):
            self._protocol.consumed(len(item.text))
        return item

    def accepts_input(self) -> bool:
        stdin = self._transport.get_pipe_transport(0)
        return stdin is not None and not stdin.is_closing() and self.returncode is None

    def write(self, data: bytes) -> bool:
        """Queue bytes for the program's stdin, in order; False when it no longer reads it.

        No flow control: the driver writes a few lines per run (input, steers, cancel).
        """
        stdin = self._transport.get_pipe_transport(0)
        if not isinstance(stdin, asyncio.WriteTransport) or stdin.is_closing():
            return False
        stdin.write(data)
        return True

    def close_stdin(self) -> None:
        """Close stdin once what was written has been flushed."""
        stdin = self._transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()

    async def exited_within(self, seconds: float) -> bool:
        """Wait for the main process to exit; False if ``seconds`` passed first."""
        try:
            await asyncio.wait_for(asyncio.shield(self._protocol.exited), seconds)
        except TimeoutError:
            return False
        return True

    def signal_group(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the program's process group (everything it started) if any is left."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns once it exited."""
        if self.returncode is None:
            self.signal_group(signal.SIGTERM)
            if not await self.exited_within(max(grace, 0.0)):
                logger.warning("agent program pid %d outlived SIGTERM by %.1fs", self.pid, grace)
        self.signal_group(signal.SIGKILL)
        await self.exited_within(_KILL_WAIT)

    async def close(self) -> None:
        """Kill whatever is left of the process group and release the pipes. Idempotent."""
        self.signal_group(signal.SIGKILL)
        await self.exited_within(_KILL_WAIT)
        self._transport.close()


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[OutputLine | _Closed | _Exited] = asyncio.Queue()
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.SubprocessTransport | None = None
        self._splitters = {1: LineSplitter(STDOUT_LINE_MAX), 2: LineSplitter(STDERR_LINE_MAX)}
        self._names: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}
        self._unread = 0
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._transport = transport

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        self._put(fd, self._splitters[fd].feed(data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._splitters:
            return  # stdin: the program closed it, or we did
        self._put(fd, self._splitters[fd].close())
        self.queue.put_nowait(_Closed(fd))

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self.queue.put_nowait(_Exited())

    def consumed(self, size: int) -> None:
        self._unread -= size
        if self._paused and self._unread < _UNREAD_MAX // 2:
            self._paused = False
            self._set_reading(resume=True)

    def _put(self, fd: int, lines: list[str]) -> None:
        for text in lines:
            self.queue.put_nowait(OutputLine(self._names[fd], text))
            self._unread += len(text)
        if not self._paused and self._unread > _UNREAD_MAX:
            self._paused = True
            self._set_reading(resume=False)

    def _set_reading(self, *, resume: bool) -> None:
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd) if self._transport else None
            if isinstance(pipe, asyncio.ReadTransport) and not pipe.is_closing():
                if resume:
                    pipe.resume_reading()
                else:
                    pipe.pause_reading()


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class StderrTail:
    """The last lines a program wrote to stderr, for the error when it exits unexpectedly."""

    def __init__(self, lines: int = 20, width: int = 300) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._width = width

    def add(self, line: str) -> None:
        self._lines.append(line if len(line) <= self._width else line[: self._width] + "…")

    def describe(self) -> str:
        if not self._lines:
            return "it wrote nothing to stderr"
        return "last lines of its stderr:\n" + "\n".join(self._lines)


class LineSplitter:
    """Bytes in, complete text lines out; a line longer than ``limit`` bytes is cut short."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._truncated = False

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._append(chunk[start:end])
            lines.append(self._take())
            start = end + 1
        self._append(chunk[start:])
        return lines

    def close(self) -> list[str]:
        return [self._take()] if self._buffer or self._truncated else []

    def _append(self, piece: bytes) -> None:
        room = self._limit - len(self._buffer)
        if len(piece) > room:
            piece = piece[: max(room, 0)]
            self._truncated = True
        self._buffer += piece

    def _take(self) -> str:
        text = self._buffer.decode("utf-8", errors="replace").removesuffix("\r")
        if self._truncated:
            text += " …[truncated]"
        self._buffer.clear()
        self._truncated = False
        return text
