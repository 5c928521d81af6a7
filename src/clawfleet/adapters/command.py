"""The `command` adapter's driver: runs any program that speaks a small stdin/stdout protocol.

The first adapter, and the way to put any command-line agent under ClawFleet without writing an
adapter for it. The protocol is documented for agent authors in ``docs/adapters/command.md``.
This module is the facade the runner sees; the modes and the wire format live beside it:

- ``command_config``: the ``protocol``/``mode`` settings (pure; the control plane validates too)
- ``command_protocol``: what each JSONL line means, and the result events (pure)
- ``command_process``: spawning in a clean env and own process group, line reading, termination
- ``command_per_run`` / ``command_long_lived``: one program per run, or one for all runs
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from clawfleet.adapters.base import AgentBundle, AgentEvent, RunInput
from clawfleet.adapters.command_config import (
    CommandConfig,
    parse_command_config,
    validate_command_config,
)
from clawfleet.adapters.command_long_lived import LongLivedProgram
from clawfleet.adapters.command_per_run import PerRunPrograms
from clawfleet.adapters.command_protocol import failed
from clawfleet.adapters.command_spawn import check_startable, inherited_env, program_env
from clawfleet.core.errors import Conflict, PermanentError
from clawfleet.domain.lifecycle import FailureKind

__all__ = ["CommandConfig", "CommandDriver", "validate_command_config"]


class CommandDriver:
    """Driver for ``adapter: command``: ``bundle.command`` is the argv, ``bundle.config`` holds
    ``protocol`` (``jsonl`` | ``text``) and ``mode`` (``per-run`` | ``long-lived``).

    ``base_env`` is what programs inherit from the runner; by default PATH, HOME and LANG of this
    process and nothing else (the one place the driver reads the environment, so that the
    runner's own variables, such as its token, never reach an agent program).
    ``exit_wait`` is how long a program may take to exit after its result line.
    """

    def __init__(
        self, *, base_env: Mapping[str, str] | None = None, exit_wait: float = 2.0
    ) -> None:
        self._base_env = dict(base_env) if base_env is not None else inherited_env(os.environ)
        self._bundle: AgentBundle | None = None
        self._config = CommandConfig()
        self._per_run = PerRunPrograms(exit_wait=exit_wait)
        self._long_lived = LongLivedProgram()

    async def start(self, bundle: AgentBundle) -> None:
        """Check the bundle and, in long-lived mode, start the program.

        Raises PermanentError for a bundle of another adapter, a bad config, or a program that
        cannot be found or started. Idempotent for the same bundle; in long-lived mode a running
        program must be stopped before starting with another bundle (Conflict).
        """
        if bundle.adapter != "command":
            raise PermanentError(f"the command driver cannot run adapter {bundle.adapter!r}")
        if not bundle.command:
            raise PermanentError("adapter 'command' needs 'command': the program and its arguments")
        config = parse_command_config(bundle.config)
        env = program_env(self._base_env, bundle.env)
        if self._long_lived.running:
            if bundle == self._bundle:
                return
            raise Conflict("the agent program runs with another bundle; stop() it before start()")
        check_startable(bundle.command, workdir=bundle.workdir, env=env)
        if config.mode == "long-lived":
            await self._long_lived.start(bundle.command, workdir=bundle.workdir, env=env)
        self._bundle, self._config = bundle, config

    async def ready(self) -> bool:
        if self._bundle is None:
            return False
        return self._config.mode == "per-run" or self._long_lived.running

    def execute(self, run: RunInput) -> AsyncIterator[AgentEvent]:
        """Run one attempt; the events end with exactly one ``result``.

        Never raises for agent failures: a program that cannot start, exits early or writes a
        malformed result ends the run failed (``agent-exited`` or ``invalid-output``). Raises
        Conflict if ``run.run_id`` is already executing.
        """
        bundle = self._bundle
        if bundle is None:
            return _fail_at_once("the command driver is not started; the runner calls start()")
        if self._config.mode == "long-lived":
            return self._long_lived.execute(run)
        env = program_env(self._base_env, bundle.env) | {
            "CLAWFLEET_RUN_ID": run.run_id,
            "CLAWFLEET_TASK_ID": run.task_id,
            "CLAWFLEET_ATTEMPT": str(run.attempt),
        }
        return self._per_run.execute(
            run,
            argv=bundle.command,
            workdir=bundle.workdir,
            env=env,
            protocol=self._config.protocol,
        )

    async def steer(self, run_id: str, message: str) -> None:
        """Write a steer line to the run's program. Raises NotFound if the run is not active
        (or no longer reads input) and InvalidInput for text-protocol programs."""
        if self._long_lived.owns(run_id):
            await self._long_lived.steer(run_id, message)
        else:
            await self._per_run.steer(run_id, message)

    async def cancel(self, run_id: str, grace: float = 3.0) -> None:
        """Cancel the run; a no-op for an unknown or finished run. Idempotent.

        Per-run: returns once the program's process group is gone (SIGKILL after ``grace``).
        Long-lived: the program is asked to drop the run; the run ends when it answers or after
        ``grace``, and the program keeps serving other runs.
        """
        await self._long_lived.cancel(run_id, grace)
        await self._per_run.cancel(run_id, grace)

    async def stop(self, grace: float = 5.0) -> None:
        """Terminate every program; runs in flight end with ``agent-exited``. Idempotent."""
        await self._per_run.stop(grace)
        await self._long_lived.stop(grace)
        self._bundle = None


async def _fail_at_once(error: str) -> AsyncIterator[AgentEvent]:
    yield failed(FailureKind.AGENT_EXITED, error)


if TYPE_CHECKING:  # mypy proves that CommandDriver satisfies the Driver protocol
    from clawfleet.adapters.base import Driver

    _driver_check: Driver = CommandDriver()
