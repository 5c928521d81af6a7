"""An in-memory Runtime, so controllers are tested in fake time without processes.

Controllers only see the ``Runtime`` seam (``runtimes/base.py``). This fake keeps its Instances
as records: a launched Instance runs until it is stopped or the test makes it exit
(``exit``). Tests steer it with a few controls: ``fail_launches`` makes the next launches raise
(a ``PermanentError`` or a ``TemporaryError``), ``exit`` ends an Instance with an exit code,
``write`` adds a line to its log, and ``launched``, ``stopped`` and ``removed`` record what the
code under test asked for, in order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import ClawfleetError
from clawfleet.runtimes.base import (
    INSTANCE_LABEL,
    OWNER_LABEL,
    Capabilities,
    Handle,
    LaunchSpec,
    Observation,
    State,
)

SIGTERM_EXIT = 128 + 15

FAKE_CAPABILITIES = Capabilities(
    isolation="none", survives_control_plane_restart=True, resource_limits=False, log_follow=True
)


@dataclass
class _Launch:
    """One launch of an Instance; a relaunch of the same instance id is a new one."""

    handle: Handle
    spec: LaunchSpec
    started_at: datetime
    exit_code: int | None = None
    finished_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def observe(self) -> Observation:
        if self.running:
            return Observation(State.RUNNING, started_at=self.started_at)
        return Observation(
            State.EXITED,
            exit_code=self.exit_code,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


@dataclass
class _Record:
    """What the fake keeps per instance id: the current launch and the log of all of them."""

    current: _Launch
    lines: list[str] = field(default_factory=list)


class FakeRuntime:
    """A ``Runtime`` whose Instances live in this object; times come from ``clock``."""

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

    # -- test controls ---------------------------------------------------------------------

    def fail_launches(self, error: ClawfleetError, times: int = 1) -> None:
        """Make the next ``times`` launches that would start something raise ``error``."""
        self._failures.extend([error] * times)

    def exit(self, instance_id: str, code: int) -> None:
        """End the running Instance ``instance_id`` now, with exit code ``code``."""
        launch = self._records[instance_id].current
        if launch.running:
            launch.exit_code, launch.finished_at = code, self._clock.now()

    def write(self, instance_id: str, line: str) -> None:
        """Add ``line`` to the Instance's log, as if its program had printed it."""
        self._records[instance_id].lines.append(line)

    def running(self) -> list[str]:
        """Instance ids of what runs now, sorted."""
        return sorted(i for i, record in self._records.items() if record.current.running)

    # -- the Runtime protocol --------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> Handle:
        """Idempotent per instance id while its launch runs; a finished one launches anew."""
        record = self._records.get(spec.instance_id)
        if record is not None and record.current.running:
            return record.current.handle
        self.launched.append(spec)
        if self._failures:
            raise self._failures.pop(0)
        labels = {**spec.labels, OWNER_LABEL: self.owner, INSTANCE_LABEL: spec.instance_id}
        handle = Handle(self.name, spec.instance_id, f"fake:{next(self._refs)}", labels)
        launch = _Launch(handle, spec, self._clock.now())
        if record is None:
            self._records[spec.instance_id] = _Record(launch)
        else:
            record.current = launch
        return handle

    async def inspect(self, handle: Handle) -> Observation:
        launch = self._launch_of(handle)
        if launch is None:
            return Observation(State.MISSING, detail=f"no instance {handle.instance_id!r}")
        return launch.observe()

    async def stop(self, handle: Handle, grace: float) -> Observation:
        launch = self._launch_of(handle)
        if launch is None:
            return Observation(State.MISSING, detail=f"no instance {handle.instance_id!r}")
        self.stopped.append(handle)
        if launch.running:
            launch.exit_code, launch.finished_at = SIGTERM_EXIT, self._clock.now()
        return launch.observe()

    async def logs(
        self, handle: Handle, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        record = self._records.get(handle.instance_id)
        lines = list(record.lines) if record is not None else []
        for line in lines[-tail:] if tail else ([] if tail == 0 else lines):
            yield line
        await asyncio.sleep(0)

    async def list_owned(self, labels: Mapping[str, str] | None = None) -> list[Handle]:
        wanted = dict(labels or {})
        return [
            record.current.handle
            for _, record in sorted(self._records.items())
            if all(record.current.handle.labels.get(k) == v for k, v in wanted.items())
        ]

    async def remove(self, handle: Handle) -> None:
        launch = self._launch_of(handle)
        if launch is None:
            return
        self.removed.append(handle)
        del self._records[handle.instance_id]

    def _launch_of(self, handle: Handle) -> _Launch | None:
        record = self._records.get(handle.instance_id)
        if record is None or record.current.handle.ref != handle.ref:
            return None
        return record.current
