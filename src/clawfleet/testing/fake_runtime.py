"""An in-memory Runtime, so controllers are tested in fake time without processes.

Controllers only see the ``Runtime`` seam (``runtimes/base.py``). This fake keeps its Instances
in this object and passes the same ``RuntimeContract`` as the local runtime
(``tests/testing/test_fake_runtime.py``): ``sh -c`` scripts run in the tiny interpreter of
``fake_programs``, and any other command (a runner) is an idle program that runs until it is
stopped or a test ends it. Sleeps, stop grace periods and timestamps use the injected clock, so
with a ``FakeClock`` nothing waits for real.

Test controls: ``fail_launches`` makes the next launches raise (a ``PermanentError`` or a
``TemporaryError``), ``exit`` ends an Instance with an exit code, ``write`` adds a line to its
log, ``running`` lists what runs; ``launched``, ``stopped`` and ``removed`` record what the code
under test asked for, in order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import ClawfleetError, InvalidInput
from clawfleet.runtimes.base import (
    INSTANCE_LABEL,
    OWNER_LABEL,
    Capabilities,
    Handle,
    LaunchSpec,
    Observation,
    State,
    validate_instance_id,
)
from clawfleet.testing.fake_programs import FakeProcess, program_of

FAKE_CAPABILITIES = Capabilities(
    isolation="none", survives_control_plane_restart=True, resource_limits=False, log_follow=True
)


@dataclass
class _Launch:
    """One launch of an Instance; a relaunch of the same instance id is a new one."""

    handle: Handle
    spec: LaunchSpec  # its repr leaves the environment out
    process: FakeProcess
    started_at: datetime
    finished_at: datetime | None = None

    def observe(self) -> Observation:
        if self.process.exit_code is None:
            return Observation(State.RUNNING, started_at=self.started_at)
        return Observation(
            State.EXITED,
            exit_code=self.process.exit_code,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


@dataclass
class _Record:
    """What the fake keeps per instance id: its current launch and the log of all of them."""

    current: _Launch | None = None
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def touch(self) -> None:
        """Wake the log followers (each waits on the event it saw before looking)."""
        self.changed.set()
        self.changed = asyncio.Event()


class FakeRuntime:
    """A ``Runtime`` whose Instances live in this object."""

    capabilities = FAKE_CAPABILITIES

    def __init__(
        self, name: str = "fake", *, clock: Clock | None = None, owner: str = "clawfleet"
    ) -> None:
        self.name = name
        self.owner = owner
        self._clock = clock or SystemClock()
        self._records: dict[str, _Record] = {}
        self._refs = itertools.count(1)
        self._failures: list[ClawfleetError] = []
        self.launched: list[LaunchSpec] = []
        self.stopped: list[Handle] = []
        self.removed: list[Handle] = []
        self.maintained = 0

    # -- test controls ---------------------------------------------------------------------

    def fail_launches(self, error: ClawfleetError, times: int = 1) -> None:
        """Make the next ``times`` launches that would start something raise ``error``."""
        self._failures.extend([error] * times)

    def exit(self, instance_id: str, code: int) -> None:
        """End the running Instance ``instance_id`` now, with exit code ``code``."""
        launch = self._records[instance_id].current
        if launch is not None:
            launch.process.end(code)

    def write(self, instance_id: str, line: str) -> None:
        """Add ``line`` to the Instance's log, as if its program had printed it."""
        record = self._records[instance_id]
        record.lines.append(line)
        record.touch()

    def running(self) -> list[str]:
        """Instance ids of what runs now, sorted."""
        return sorted(
            instance_id
            for instance_id, record in self._records.items()
            if record.current is not None and record.current.process.exit_code is None
        )

    def metadata(self, handle: Handle) -> list[str]:
        """Everything this fake keeps about ``handle`` but the program's output, as text."""
        record = self._records.get(handle.instance_id)
        return [repr(record.current)] if record is not None else []

    # -- the Runtime protocol --------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> Handle:
        """Idempotent per instance id while its launch runs; a finished one launches anew,
        appending to the same log. PermanentError for an unsafe id or a script outside the
        interpreter's subset; whatever ``fail_launches`` asked for."""
        validate_instance_id(spec.instance_id)
        known = self._records.get(spec.instance_id)
        current = known.current if known is not None else None
        if current is not None and current.process.exit_code is None:
            return current.handle
        self.launched.append(spec)
        if self._failures:
            raise self._failures.pop(0)
        statements = program_of(spec.command)
        record = self._records.setdefault(spec.instance_id, _Record())
        labels = {**spec.labels, OWNER_LABEL: self.owner, INSTANCE_LABEL: spec.instance_id}
        handle = Handle(self.name, spec.instance_id, f"fake:{next(self._refs)}", labels)

        def write(line: str) -> None:
            record.lines.append(line)
            record.touch()

        def exited(_code: int) -> None:
            if record.current is not None and record.current.handle is handle:
                record.current.finished_at = self._clock.now()
            record.touch()

        process = FakeProcess(statements, spec.env, self._clock, write, exited)
        record.current = _Launch(handle, spec, process, self._clock.now())
        return handle

    async def inspect(self, handle: Handle) -> Observation:
        launch = self._launch_of(handle)
        return launch.observe() if launch is not None else _missing(handle)

    async def stop(self, handle: Handle, grace: float) -> Observation:
        """SIGTERM, and SIGKILL after ``grace`` seconds of the clock; idempotent."""
        launch = self._launch_of(handle)
        if launch is None:
            return _missing(handle)
        self.stopped.append(handle)
        process = launch.process
        if process.exit_code is None:
            process.terminate()
            if process.exit_code is None:
                finished = asyncio.ensure_future(process.finished.wait())
                try:
                    await self._clock.wait([finished], grace)
                finally:
                    finished.cancel()
            process.kill()
        return launch.observe()

    async def logs(
        self, handle: Handle, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """All lines of the instance id's log, oldest first (the last ``tail`` if given); with
        ``follow``, new ones too until its program exits. InvalidInput for a negative tail."""
        if tail is not None and tail < 0:
            raise InvalidInput(f"tail must be zero or more lines, not {tail}")
        record = self._records.get(handle.instance_id)
        if record is None:
            return
        position = max(0, len(record.lines) - tail) if tail is not None else 0
        while True:
            changed = record.changed
            while position < len(record.lines):
                yield record.lines[position]
                position += 1
            launch = record.current
            if not follow or launch is None or launch.process.exit_code is not None:
                return
            await changed.wait()

    async def list_owned(self, labels: Mapping[str, str] | None = None) -> list[Handle]:
        wanted = dict(labels or {})
        return [
            record.current.handle
            for _, record in sorted(self._records.items())
            if record.current is not None
            and all(record.current.handle.labels.get(k) == v for k, v in wanted.items())
        ]

    async def remove(self, handle: Handle) -> None:
        """Forget the instance id (killed first if it runs); a superseded handle removes
        nothing. Idempotent."""
        launch = self._launch_of(handle)
        if launch is None:
            return
        launch.process.kill()
        self.removed.append(handle)
        del self._records[handle.instance_id]

    async def maintain(self) -> None:
        """Nothing to keep bounded in memory; counted, so tests can see it was called."""
        self.maintained += 1

    def _launch_of(self, handle: Handle) -> _Launch | None:
        record = self._records.get(handle.instance_id)
        if record is None or record.current is None or record.current.handle.ref != handle.ref:
            return None
        return record.current


def _missing(handle: Handle) -> Observation:
    return Observation(State.MISSING, detail=f"no instance {handle.instance_id!r} ({handle.ref})")
