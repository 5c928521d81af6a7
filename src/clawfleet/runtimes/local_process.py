"""Starting, watching and signalling local processes, with /proc as the source of truth.

A control plane that restarted is no longer the parent of the processes it launched, so it cannot
wait() for them. A pid plus the process start time (field 22 of ``/proc/<pid>/stat``) names one
process unambiguously even after the pid is reused, so that is what the runtime records and checks
before it reports on or signals a process it did not start itself.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clawfleet.core.errors import ClawfleetError, PermanentError, TemporaryError

# errno values that retrying will not fix: the program is missing, not executable or not a program.
_PERMANENT_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.EACCES,
        errno.EPERM,
        errno.ENOEXEC,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
        errno.E2BIG,
    }
)


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the runtime needs."""

    state: str  # R, S, D, Z (zombie), X (dead), ...
    pgrp: int
    starttime: int


def read_proc_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat | None:
    """The stat of ``pid``, or None if there is no such process."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain ')' or spaces.
    fields = text.rpartition(")")[2].split()
    return ProcStat(state=fields[0], pgrp=int(fields[2]), starttime=int(fields[19]))


def is_alive(pid: int, starttime: int) -> bool:
    """True iff the very process that started at ``starttime`` as ``pid`` still runs."""
    stat = read_proc_stat(pid)
    return stat is not None and stat.starttime == starttime and stat.state not in ("Z", "X")


def has_exited(child: subprocess.Popen[bytes]) -> bool:
    """True if our child has exited, without reaping it (so its pid cannot be reused yet)."""
    if child.returncode is not None:
        return True
    try:
        result = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False  # reaped elsewhere; Popen.poll() will say so
    return result is not None


def reap(child: subprocess.Popen[bytes]) -> int | None:
    """Poll ``child``: its returncode once it has exited (reaping it), else None.

    What is left of its process group is killed first, while the unreaped leader still pins the
    group id, the way a container's other processes die with its main one.
    """
    if child.returncode is None and has_exited(child):
        signal_group(child.pid, signal.SIGKILL)
    return child.poll()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise PermanentError(f"not allowed to signal process group {pgid}: {exc}") from exc


def exit_status(returncode: int) -> tuple[int, int | None]:
    """(exit code, signal) from a Popen returncode; a death by signal N is code 128 + N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def describe_exit(exit_code: int | None, exit_signal: int | None) -> str:
    if exit_signal is not None:
        return f"killed by {signal.Signals(exit_signal).name}"
    if exit_code is None:
        return "exit code unknown: the process was started by an earlier control-plane process"
    return f"exited with code {exit_code}"


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    handover: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session writing stdout and stderr to ``log_path``.

    The child gets exactly ``env`` (nothing of the control plane's environment), no stdin and
    none of our other file descriptors, except one pipe per ``handover`` item: the value is
    written into it, and the variable named by the key holds the child's descriptor of it
    (for secrets that must not sit in the child's environment, which /proc shows to every
    process of the user). A bare program name is looked up on ``env['PATH']`` (or the system
    default path). PermanentError if the program cannot be executed, TemporaryError for
    resource shortages (too many processes or open files, ...).
    """
    env = dict(env)
    pipes: list[int] = []
    try:
        for variable, value in (handover or {}).items():
            pipes.append(_pipe_holding(value.encode()))
            env[variable] = str(pipes[-1])
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        for fd in pipes:
            os.close(fd)
        raise translate_os_error(exc, f"cannot open log file {log_path}") from exc
    try:
        return subprocess.Popen(  # noqa: S603 - running the caller's command is the point
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pipes),
        )
    except OSError as exc:
        raise translate_os_error(
            exc,
            f"cannot start program {command[0]!r}",
            hint="check that it exists and is executable (a bare name is looked up on the PATH "
            "of the instance's env)",
        ) from exc
    finally:
        os.close(log_fd)
        for fd in pipes:
            os.close(fd)


def _pipe_holding(data: bytes) -> int:
    """The read end of a pipe that holds ``data`` and is closed for writing (EOF after it)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)  # shorter than the pipe's buffer: this does not block
    finally:
        os.close(write_fd)
    return read_fd


def translate_os_error(exc: OSError, what: str, *, hint: str = "") -> ClawfleetError:
    """PermanentError for errors retrying cannot fix, TemporaryError for the rest."""
    message = f"{what}: {exc.strerror or exc}" + (f"; {hint}" if hint else "")
    if exc.errno in _PERMANENT_ERRNOS:
        return PermanentError(message)
    return TemporaryError(message, delay=5.0)
