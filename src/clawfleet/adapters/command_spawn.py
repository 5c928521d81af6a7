"""Starting an agent program for the command driver, so that it can never outlive the runner.

Each program gets its own session and process group (a signal to the group reaches everything it
started), the Linux parent-death signal (it dies with a runner that is ``kill -9``'d), and a
minimal environment (the runner's own variables, such as its control-plane token, never reach
it). Error messages name the program, never an environment value: bundle variables may be secret.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from clawfleet.adapters.command_process import AgentProcess
from clawfleet.core.errors import PermanentError

logger = logging.getLogger(__name__)

INHERITED_VARIABLES = ("PATH", "HOME", "LANG")
_PR_SET_PDEATHSIG = 1


class ProgramStartError(PermanentError):
    """The agent program could not be started (not found, not executable, no working dir)."""

    code = "agent-start-failed"


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The few variables of the runner's environment that an agent program inherits."""
    return {name: environ[name] for name in INHERITED_VARIABLES if name in environ}


def program_env(base: Mapping[str, str], bundle_env: Mapping[str, str]) -> dict[str, str]:
    """The program's environment: the inherited variables, then the agent's own (which win)."""
    return {"PATH": os.defpath, **base, **bundle_env}


def resolve_executable(argv0: str, *, path: str, workdir: Path) -> str:
    """The absolute path of the program; raises ProgramStartError.

    Messages name the program, never the value of PATH: bundle variables may be secret.
    """
    if os.sep in argv0:
        candidate = Path(argv0) if os.path.isabs(argv0) else workdir / argv0
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise ProgramStartError(
            f"the agent program {str(candidate)!r} does not exist or is not executable"
        )
    found = shutil.which(argv0, path=path)
    if found is None:
        raise ProgramStartError(
            f"the agent program {argv0!r} was not found on the agent's PATH; "
            "install it, use an absolute path, or set PATH in the agent's env"
        )
    return os.path.abspath(found)


async def spawn_program(
    argv: Sequence[str], *, workdir: Path, env: Mapping[str, str]
) -> AgentProcess:
    """Start the program with piped stdio in its own session; raises ProgramStartError."""
    executable = check_startable(argv, workdir=workdir, env=env)
    loop = asyncio.get_running_loop()
    try:
        return await AgentProcess.start(
            loop,
            argv,
            executable=executable,
            cwd=workdir,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise ProgramStartError(
            f"could not start the agent program {argv[0]!r}: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:  # e.g. a NUL byte in an argument or a variable
        raise ProgramStartError(f"could not start the agent program {argv[0]!r}: {exc}") from exc


def check_startable(argv: Sequence[str], *, workdir: Path, env: Mapping[str, str]) -> str:
    """The program's absolute path, if it and its working directory exist; else raises
    ProgramStartError."""
    if not argv:
        raise ProgramStartError("the agent has no command to run")
    executable = resolve_executable(argv[0], path=env.get("PATH", os.defpath), workdir=workdir)
    if not workdir.is_dir():
        raise ProgramStartError(f"the agent's working directory {str(workdir)!r} does not exist")
    return executable


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function: the child gets SIGKILL when the thread that started it ends.

    Linux only. The parent-death signal fires when the *thread* that forked exits, so programs
    must be spawned from the runner's event-loop thread, which lives as long as the runner.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return preexec
