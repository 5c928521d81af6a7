"""Keeping the runner's token from the agent program it supervises.

On the local runtime the runner and its agent program run as the same OS user, and any process
may read the environment (``/proc/<pid>/environ``) and memory of another of its user's. So the
runtime hands the token over on an inherited pipe instead of the environment, and the runner,
before it reads it, makes itself non-dumpable: Linux then closes its ``/proc/<pid>/environ``,
``mem`` and ``ptrace`` to everything but root. The agent program, started later from a
program file, is dumpable again and inherits neither the pipe nor the token.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import MutableMapping

from clawfleet.core.errors import ConfigurationError
from clawfleet.core.settings import RUNNER_TOKEN_FD_VARIABLE

_PR_SET_DUMPABLE = 4  # <linux/prctl.h>
_MAX_TOKEN_BYTES = 4096


def forbid_inspection() -> bool:
    """Make this process non-dumpable (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def take_token(environ: MutableMapping[str, str]) -> str | None:
    """The token from the pipe named in ``environ``, if any; the pipe is closed and its
    variable leaves ``environ``. None when the token comes in ``RUNNER_TOKEN_VARIABLE``
    instead (runtimes whose environments are private), which the caller removes once read."""
    variable = environ.pop(RUNNER_TOKEN_FD_VARIABLE, None)
    if variable is None:
        return None
    try:
        fd = int(variable)
    except ValueError as exc:
        raise ConfigurationError(f"{RUNNER_TOKEN_FD_VARIABLE} is not a descriptor") from exc
    try:
        data = b""
        while chunk := os.read(fd, _MAX_TOKEN_BYTES):
            data += chunk
            if len(data) > _MAX_TOKEN_BYTES:
                raise ConfigurationError(f"the pipe in {RUNNER_TOKEN_FD_VARIABLE} holds no token")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the token pipe {fd}: {exc}") from exc
    finally:
        os.close(fd)
    return data.decode(errors="replace").strip()
