"""The runner's token: handed over on a pipe, and the runner not dumpable (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clawfleet.core.errors import ConfigurationError
from clawfleet.runner.secrecy import take_token

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def test_the_token_comes_off_the_pipe_and_its_variable_leaves_the_environment() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"cf_the-token\n")
    os.close(write_fd)
    environ = {"CLAWFLEET_RUNNER_TOKEN_FD": str(read_fd), "PATH": "/bin"}

    assert take_token(environ) == "cf_the-token"
    assert environ == {"PATH": "/bin"}
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(read_fd)  # closed: no process the runner starts inherits it


def test_no_pipe_means_the_token_is_in_the_environment() -> None:
    assert take_token({"CLAWFLEET_RUNNER_TOKEN": "cf_x"}) is None
    with pytest.raises(ConfigurationError, match="not a descriptor"):
        take_token({"CLAWFLEET_RUNNER_TOKEN_FD": "three"})


def test_a_runner_is_not_dumpable_and_its_children_are() -> None:
    script = (
        "import ctypes, subprocess, sys\n"
        "from clawfleet.runner.secrecy import forbid_inspection\n"
        "assert forbid_inspection()\n"
        "libc = ctypes.CDLL(None)\n"
        "child = subprocess.run([sys.executable, '-c', "
        "'import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))'], capture_output=True)\n"
        "print(libc.prctl(3, 0, 0, 0, 0), child.stdout.decode().strip())\n"  # PR_GET_DUMPABLE
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "1"]
