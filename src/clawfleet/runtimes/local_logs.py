"""Reading and rotating the log file a local Instance appends to.

The child process writes ``instance.log`` itself (opened with O_APPEND), so its output survives a
control-plane restart. That rules out rename-based rotation: the runtime rotates by copytruncate
(copy to ``instance.log.1``, shifting older backups, then truncate in place), and readers that
follow the file notice a rotation and pick up what they missed from the fresh backup.
Files are reopened on every read so that no descriptor is held across an ``await``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

CHUNK = 64 * 1024
FOLLOW_POLL_INTERVAL = 0.05


def backup_path(log: Path, n: int) -> Path:
    return log.with_name(f"{log.name}.{n}")


def history(log: Path, backups: int) -> list[Path]:
    """The log and its backups, oldest first (only those that exist, plus the live file)."""
    older = [backup_path(log, n) for n in range(backups, 0, -1)]
    return [path for path in older if path.exists()] + [log]


def rotate_file(log: Path, backups: int) -> None:
    """Copytruncate ``log``: shift ``.1``… to ``.2``… (dropping the oldest beyond ``backups``),
    copy the log to a fresh ``.1`` and truncate it. The writer keeps appending from offset 0.

    Lines written between the copy and the truncation are lost (inherent to copytruncate).
    Raises OSError.
    """
    if backups > 0:
        for n in range(backups, 1, -1):
            older = backup_path(log, n - 1)
            if older.exists():
                os.replace(older, backup_path(log, n))
        # Copy to a new file and rename it into place: a new inode tells followers it rotated.
        tmp = log.with_name(f".{log.name}.rotating")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(log, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        os.replace(tmp, backup_path(log, 1))
    os.truncate(log, 0)


def read_range(path: Path, offset: int, size: int = -1) -> bytes:
    """Up to ``size`` bytes (all if -1) of ``path`` from ``offset``; b"" if it does not exist."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            return file.read(size)
    except FileNotFoundError:
        return b""


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


class LineBuffer:
    """Turns chunks of bytes into complete lines, holding back a trailing partial line."""

    def __init__(self, partial: bytes = b"") -> None:
        self.partial = partial

    def feed(self, data: bytes) -> list[str]:
        if not data:
            return []
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [_decode(line) for line in complete]

    def flush(self) -> list[str]:
        """The partial line, if any, as a line of its own (the writer is done)."""
        rest, self.partial = self.partial, b""
        return [_decode(rest)] if rest else []


def read_tail(
    paths_newest_first: Sequence[Path], live_size: int, n: int
) -> tuple[list[str], bytes]:
    """The last ``n`` complete lines across the files and the trailing partial line.

    ``paths_newest_first[0]`` is the live log, read only up to ``live_size`` bytes.
    """
    blocks: list[bytes] = []
    newlines = 0
    reached_start = True
    for index, path in enumerate(paths_newest_first):
        end = live_size if index == 0 else _size(path)
        while end > 0 and newlines <= n:
            start = max(0, end - CHUNK)
            block = read_range(path, start, end - start)
            blocks.append(block)
            newlines += block.count(b"\n")
            end = start
        if newlines > n:
            reached_start = end == 0 and index == len(paths_newest_first) - 1
            break
    *complete, partial = b"".join(reversed(blocks)).split(b"\n")
    if not reached_start:
        complete = complete[1:]  # may be the end of a line we did not read whole
    return ([_decode(line) for line in complete[-n:]] if n else []), partial


class LogFollower:
    """Reads what is appended to a live log file, across copytruncate rotations."""

    def __init__(self, log: Path, offset: int) -> None:
        self.log = log
        self.offset = offset
        self._backup_id = _file_id(backup_path(log, 1))

    def read(self) -> bytes:
        """New bytes since the last read (b"" if none)."""
        backup = backup_path(self.log, 1)
        backup_id = _file_id(backup)
        missed = b""
        if backup_id is not None and backup_id != self._backup_id:
            # Rotated since the last read: what we had not read yet went into the fresh backup.
            self._backup_id = backup_id
            missed = read_range(backup, self.offset)
            self.offset = 0
        elif _size(self.log) < self.offset:  # truncated without a backup: start over
            self.offset = 0
        data = read_range(self.log, self.offset, CHUNK)
        self.offset += len(data)
        return missed + data


async def read_lines(
    log: Path,
    *,
    backups: int,
    tail: int | None,
    running: Callable[[], Awaitable[bool]] | None,
) -> AsyncIterator[str]:
    """Lines of ``log`` and its backups, oldest first (the last ``tail`` if given); then, if
    ``running`` is given, lines as they are appended until it returns False and the log is
    drained."""
    buffer = LineBuffer()
    if tail is None:
        offset = 0
        for path in history(log, backups):
            offset = 0
            while chunk := read_range(path, offset, CHUNK):
                offset += len(chunk)
                for line in buffer.feed(chunk):
                    yield line
    else:
        offset = _size(log)
        newest_first = list(reversed(history(log, backups)))
        lines, buffer.partial = read_tail(newest_first, offset, tail)
        if running is None and buffer.partial:
            lines = [*lines, *buffer.flush()][-tail:] if tail else []
        for line in lines:
            yield line
    if running is not None:
        async for line in _follow(LogFollower(log, offset), buffer, running):
            yield line
    for line in buffer.flush():
        yield line


async def _follow(
    follower: LogFollower, buffer: LineBuffer, running: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    while True:
        # Look before reading: once the writer is gone, one more empty read means drained.
        done = not await running()
        chunk = follower.read()
        for line in buffer.feed(chunk):
            yield line
        if chunk:
            continue
        if done:
            return
        await asyncio.sleep(FOLLOW_POLL_INTERVAL)
