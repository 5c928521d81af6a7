"""The local runtime: every Instance is a process group on this machine.

It is what ``clawfleet up`` uses on a laptop, so it must survive its own restarts: each Instance
lives in ``root/<instance_id>/`` with a metadata file naming its pid and start time, and writes its
own log file, so a new control-plane process finds, inspects, stops and reads the logs of
Instances an earlier one launched (and does not launch duplicates). The environment, which may
carry secrets, reaches only the process: it is never written to disk by the runtime. The
runner's token is not in it at all, but on an inherited pipe, since /proc shows a process's
environment to every process of the same user, agent programs included.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

from clawfleet.core.clock import Clock, SystemClock
from clawfleet.core.errors import InvalidInput, PermanentError, TemporaryError
from clawfleet.core.settings import RUNNER_TOKEN_FD_VARIABLE, RUNNER_TOKEN_VARIABLE
from clawfleet.runtimes import local_logs as logfiles
from clawfleet.runtimes.base import (
    INSTANCE_LABEL,
    OWNER_LABEL,
    Capabilities,
    Handle,
    LaunchSpec,
    Observation,
    State,
)
from clawfleet.runtimes.local_process import (
    exit_status,
    is_alive,
    read_proc_stat,
    reap,
    signal_group,
    spawn,
    translate_os_error,
)
from clawfleet.runtimes.local_records import (
    CorruptRecord,
    InstancePaths,
    InstanceRecord,
    delete_tree,
    load_record,
    save_record,
)

log = logging.getLogger(__name__)

MiB = 1024 * 1024
STOP_POLL_INTERVAL = 0.02
KILL_TIMEOUT = 2.0  # how long a SIGKILLed process group may take to be gone

LOCAL_CAPABILITIES = Capabilities(
    isolation="process",
    survives_control_plane_restart=True,
    resource_limits=False,
    log_follow=True,
)


class LocalRuntime:
    """Runs Instances as local process groups under ``root``.

    The child gets exactly ``spec.env`` as its environment (nothing of the control plane's).
    Exit codes follow the shell convention: a process killed by signal N exited with 128 + N.
    Timestamps come from ``clock``; waits on real processes use the event loop's time.
    """

    name = "local"
    capabilities = LOCAL_CAPABILITIES

    def __init__(
        self,
        root: Path,
        *,
        owner: str = "clawfleet",
        clock: Clock | None = None,
        log_max_bytes: int = 10 * MiB,
        log_backups: int = 3,
    ) -> None:
        self.root = root
        self.owner = owner
        self.log_max_bytes = log_max_bytes
        self.log_backups = log_backups
        self._clock = clock or SystemClock()
        # Children this object started, kept so that they are reaped rather than left as zombies.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    async def launch(self, spec: LaunchSpec) -> Handle:
        """Start ``spec.command`` as a new process group in ``root/<instance_id>/work``.

        Idempotent per instance id: while a process launched for it (by this object or an
        earlier one on the same root) runs, return its handle. A finished one is launched again,
        appending to the same log. PermanentError for an unsafe instance id, an empty command or
        a program that cannot be executed; TemporaryError for resource shortages.
        """
        paths = InstancePaths.under(self.root, spec.instance_id)
        current = self._load(paths)
        if current is not None and self._observe(paths, current).state is State.RUNNING:
            return self._handle(current)
        if not spec.command:
            raise PermanentError(f"instance {spec.instance_id!r} has an empty command")
        fresh = not paths.dir.exists()
        try:
            paths.create()
        except OSError as exc:
            raise translate_os_error(exc, f"cannot create {paths.dir}") from exc
        try:
            env, handover = _without_runner_token(spec.env)
            child = spawn(
                spec.command, env=env, cwd=paths.work, log_path=paths.log, handover=handover
            )
        except (PermanentError, TemporaryError):
            if fresh:
                shutil.rmtree(paths.dir, ignore_errors=True)
            raise
        previous = self._children.pop(spec.instance_id, None)
        if previous is not None:  # an earlier launch of ours, found gone above
            reap(previous)
        self._children[spec.instance_id] = child
        record = self._record_launch(paths, spec, child)
        log.info("launched instance %s as pid %d", spec.instance_id, child.pid)
        return self._handle(record)

    async def inspect(self, handle: Handle) -> Observation:
        """RUNNING, EXITED (with the exit code when known) or MISSING (never launched, removed,
        or superseded by a newer launch of the same instance id). Never raises for those."""
        found = self._find(handle)
        if found is None:
            return _missing(handle)
        return self._observe(*found)

    async def stop(self, handle: Handle, grace: float) -> Observation:
        """SIGTERM the Instance's process group, SIGKILL it after ``grace`` seconds, and return
        the final observation (also recorded in ``instance.json``). Stopping an Instance that
        is not running returns its observation. TemporaryError if it survives SIGKILL."""
        found = self._find(handle)
        if found is None:
            return _missing(handle)
        paths, record = found
        observation = self._observe(paths, record)
        if observation.state is State.RUNNING:
            self._signal(record, signal.SIGTERM)
            observation = await self._wait_exited(paths, record, grace)
        if observation.state is State.RUNNING:
            self._signal(record, signal.SIGKILL)
            observation = await self._wait_exited(paths, record, KILL_TIMEOUT)
        if observation.state is State.RUNNING:
            raise TemporaryError(f"instance {handle.instance_id!r} is still running after SIGKILL")
        return observation

    async def logs(
        self, handle: Handle, *, follow: bool = False, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of ``logs/instance.log`` (stdout and stderr), oldest first, including the
        rotated backups; with ``tail``, only the last ``tail`` lines. With ``follow``, keep
        yielding lines as they are written until the process has exited and the file is
        drained. Yields nothing for an unknown instance. InvalidInput for a negative ``tail``."""
        if tail is not None and tail < 0:
            raise InvalidInput(f"tail must be zero or more lines, not {tail}")
        try:
            paths = InstancePaths.under(self.root, handle.instance_id)
        except PermanentError:
            return

        async def running() -> bool:
            return (await self.inspect(handle)).state is State.RUNNING

        lines = logfiles.read_lines(
            paths.log, backups=self.log_backups, tail=tail, running=running if follow else None
        )
        async for line in lines:
            yield line

    async def list_owned(self, labels: Mapping[str, str] | None = None) -> list[Handle]:
        """Handles of every Instance under ``root`` whose owner label is ours and whose labels
        include all of ``labels``, running or exited, sorted by instance id. Unreadable
        metadata is skipped with a warning."""
        self._reap_children()
        wanted = dict(labels or {})
        return [
            self._handle(record)
            for _, record in self._scan()
            if all(record.labels.get(key) == value for key, value in wanted.items())
        ]

    async def remove(self, handle: Handle) -> None:
        """Delete the Instance's directory (work dir, logs, metadata). A running Instance is
        killed first, without grace (stop it first for a clean exit). A handle superseded by a
        newer launch of the same instance id removes nothing. Idempotent."""
        try:
            paths = InstancePaths.under(self.root, handle.instance_id)
        except PermanentError:
            return
        record = self._load(paths)
        if record is not None and record.ref != handle.ref:
            return
        if record is not None:
            await self.stop(handle, grace=0)
        child = self._children.pop(handle.instance_id, None)
        if child is not None:
            child.poll()
        try:
            await asyncio.to_thread(delete_tree, paths.dir)
        except OSError as exc:
            raise translate_os_error(exc, f"cannot remove {paths.dir}") from exc

    async def maintain(self) -> None:
        """Rotates the logs that grew past ``log_max_bytes``."""
        await self.rotate_logs()

    async def rotate_logs(self) -> list[str]:
        """Copytruncate the log of every owned Instance whose log is larger than
        ``log_max_bytes``, keeping ``log_backups`` backups; return their instance ids.
        Meant to be called periodically; an Instance that cannot be rotated is logged and
        skipped."""
        rotated: list[str] = []
        for paths, record in self._scan():
            try:
                if paths.log.stat().st_size <= self.log_max_bytes:
                    continue
                # Synchronous on purpose: a follower in this event loop never sees half a rotation.
                logfiles.rotate_file(paths.log, self.log_backups)
            except OSError as exc:
                log.warning("cannot rotate the log of instance %s: %s", record.instance_id, exc)
                continue
            rotated.append(record.instance_id)
            await asyncio.sleep(0)
        return rotated

    # -- records -------------------------------------------------------------------------

    def _record_launch(
        self, paths: InstancePaths, spec: LaunchSpec, child: subprocess.Popen[bytes]
    ) -> InstanceRecord:
        stat = read_proc_stat(child.pid)  # our unreaped child: its /proc entry exists
        record = InstanceRecord(
            instance_id=spec.instance_id,
            pid=child.pid,
            starttime=stat.starttime if stat is not None else 0,
            command=tuple(spec.command),
            launched_at=self._clock.now(),
            labels={**spec.labels, OWNER_LABEL: self.owner, INSTANCE_LABEL: spec.instance_id},
        )
        try:
            save_record(paths, record)
        except OSError as exc:
            signal_group(child.pid, signal.SIGKILL)
            child.wait()
            del self._children[spec.instance_id]
            raise translate_os_error(exc, f"cannot write {paths.metadata}") from exc
        return record

    def _load(self, paths: InstancePaths) -> InstanceRecord | None:
        try:
            return load_record(paths)
        except (CorruptRecord, OSError) as exc:
            log.warning("ignoring unreadable %s: %s", paths.metadata, exc)
            return None

    def _find(self, handle: Handle) -> tuple[InstancePaths, InstanceRecord] | None:
        try:
            paths = InstancePaths.under(self.root, handle.instance_id)
        except PermanentError:
            return None
        record = self._load(paths)
        if record is None or record.ref != handle.ref:
            return None
        return paths, record

    def _scan(self) -> Iterator[tuple[InstancePaths, InstanceRecord]]:
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            paths = InstancePaths(entry)
            if not paths.metadata.exists():
                continue
            record = self._load(paths)
            if record is not None and record.labels.get(OWNER_LABEL) == self.owner:
                yield paths, record

    def _handle(self, record: InstanceRecord) -> Handle:
        return Handle(self.name, record.instance_id, record.ref, dict(record.labels))

    # -- processes -----------------------------------------------------------------------

    def _child_of(self, record: InstanceRecord) -> subprocess.Popen[bytes] | None:
        child = self._children.get(record.instance_id)
        return child if child is not None and child.pid == record.pid else None

    def _observe(self, paths: InstancePaths, record: InstanceRecord) -> Observation:
        child = self._child_of(record)
        if child is not None:
            returncode = reap(child)
            if returncode is None:
                return record.running()
            del self._children[record.instance_id]
            return self._finish(paths, record, *exit_status(returncode))
        if record.finished_at is not None:
            return record.exited()
        if is_alive(record.pid, record.starttime):
            return record.running()
        return self._finish(paths, record, None, None)

    def _finish(
        self, paths: InstancePaths, record: InstanceRecord, code: int | None, sig: int | None
    ) -> Observation:
        """Record that the process is gone (once; a known exit code beats an unknown one)."""
        stored = self._load(paths)
        if stored is not None and stored.ref == record.ref and stored.finished_at is not None:
            record = stored
        if record.finished_at is None or (record.exit_code is None and code is not None):
            record = record.finished(self._clock.now(), code, sig)
            try:
                save_record(paths, record)
            except OSError as exc:
                log.warning("cannot record the exit of instance %s: %s", record.instance_id, exc)
        return record.exited()

    def _signal(self, record: InstanceRecord, sig: signal.Signals) -> None:
        child = self._child_of(record)
        if child is not None:
            if child.returncode is None:  # unreaped, so the group id cannot have been reused
                signal_group(child.pid, sig)
        elif is_alive(record.pid, record.starttime):
            signal_group(record.pid, sig)

    async def _wait_exited(
        self, paths: InstancePaths, record: InstanceRecord, seconds: float
    ) -> Observation:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (observation := self._observe(paths, record)).state is State.RUNNING:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(STOP_POLL_INTERVAL)
        return observation

    def _reap_children(self) -> None:
        for child in self._children.values():
            reap(child)


def _without_runner_token(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The environment without the runner's token, and the token to hand over on a pipe: every
    process of the same user can read a process's /proc/<pid>/environ, an agent program too."""
    rest = dict(env)
    token = rest.pop(RUNNER_TOKEN_VARIABLE, None)
    return rest, ({RUNNER_TOKEN_FD_VARIABLE: token} if token is not None else {})


def _missing(handle: Handle) -> Observation:
    return Observation(State.MISSING, detail=f"no instance {handle.instance_id!r} ({handle.ref})")
