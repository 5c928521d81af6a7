"""The runner process, ``clawfleet runner``: the process beside every agent.

Started by a runtime with ``CLAWFLEET_RUNNER_SERVER``, ``CLAWFLEET_RUNNER_INSTANCE`` and
``CLAWFLEET_RUNNER_TOKEN`` in its environment (the local runtime hands the token over on a pipe
instead, ``runner/secrecy.py``), which the entry point reads once into ``RunnerSettings`` and
removes the token from at once, so no agent program inherits it. The work
is ``runner.loops.Runner``; this module wires it to the control plane, to SIGTERM/SIGINT (stop
and drain) and to an exit status that says how it ended (``RunnerExit``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

import httpx

from clawfleet.client.runner import (
    ControlPlaneUnreachable,
    RetryPolicy,
    RunnerClient,
    RunnerRefused,
)
from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import Unauthenticated
from clawfleet.core.redact import default_redactor
from clawfleet.core.settings import RunnerSettings
from clawfleet.runner.loops import AgentStartFailed, Runner

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunnerExit(enum.IntEnum):
    """The runner's exit status, for its runtime and for whoever reads the instance's log."""

    STOPPED = 0  # asked to stop (by the control plane or a signal), and drained
    ERROR = 1  # an error nobody foresaw (its traceback is in the log)
    REFUSED = 3  # the control plane refused this runner: its token, or its instance (stopped)
    UNREACHABLE = 4  # no answer from the control plane for settings.give_up_after_seconds
    START_FAILED = 5  # the agent program cannot start with this bundle (the cause is reported)
    START_FAILED_TEMPORARILY = 6  # the agent program did not start, but may on a retry


async def run_runner(
    settings: RunnerSettings,
    environ: Mapping[str, str],
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunnerExit:
    """Serve one instance until told to stop, from the working directory; returns the exit status.

    ``environ`` is the runner's environment without its token (the entry point removed it):
    the agent's ``env`` and ``secretEnv`` values are taken from it. Every way this ends is one
    clear log line, not a traceback, except an error nobody foresaw.
    """
    clock = clock or SystemClock()
    token = settings.token.get_secret_value()
    redactor = default_redactor()  # the one the log handler's filter uses
    redactor.add(token)
    policy = RetryPolicy(
        max_delay=settings.max_retry_seconds, give_up_after=settings.give_up_after_seconds
    )
    client = RunnerClient(
        settings.server, settings.instance, token, clock=clock, policy=policy, transport=transport
    )
    runner = Runner(client, environ, Path.cwd(), redactor, clock)
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, runner.stopping.set)
    try:
        await runner.run()
        return RunnerExit.STOPPED
    except (Unauthenticated, RunnerRefused) as exc:
        log.error("%s; the agent program is stopped", exc.message)
        return RunnerExit.REFUSED
    except ControlPlaneUnreachable as exc:
        log.error("%s; the agent program is stopped", exc.message)
        return RunnerExit.UNREACHABLE
    except AgentStartFailed as exc:
        log.error("%s", exc.message)
        return RunnerExit.START_FAILED if exc.permanent else RunnerExit.START_FAILED_TEMPORARILY
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        await client.close()
