"""The behaviour every Runtime backend must show, as one reusable pytest suite.

Controllers only ever see the ``Runtime`` seam, so local processes, Docker containers and
Kubernetes Pods must behave the same through it. A backend's test module subclasses
``RuntimeContract`` (the subclass name must start with ``Test``), provides a ``runtime`` fixture
and implements ``persisted_metadata``; it may override ``shell`` if its programs need another way
to run a POSIX shell script. Every program the suite launches is a tiny ``sh`` script, and
everything it launches is stopped and removed after each test.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar, Protocol

import pytest

from clawfleet.core.errors import PermanentError
from clawfleet.runtimes.base import (
    INSTANCE_LABEL,
    OWNER_LABEL,
    Handle,
    LaunchSpec,
    Observation,
    Runtime,
    State,
)

TEST_LABEL = "contract.clawfleet.dev/test"
WAIT = 5.0  # seconds to wait for something a program does at once
# Keeps running until signalled; a fresh `sleep` each second keeps a TERM trap responsive.
IDLE = "while :; do sleep 1; done"


class SpecFactory(Protocol):
    def __call__(
        self,
        script: str,
        *,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        instance_id: str | None = None,
    ) -> LaunchSpec:
        """A LaunchSpec that runs ``script`` with ``sh``, labelled for this test's clean-up."""


async def collect(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


async def wait_for_state(
    runtime: Runtime, handle: Handle, state: State, within: float = WAIT
) -> Observation:
    """Poll ``inspect`` until the Instance is in ``state``; fail the test after ``within``."""
    deadline = time.monotonic() + within
    while (observation := await runtime.inspect(handle)).state is not state:
        if time.monotonic() > deadline:
            pytest.fail(f"{handle.instance_id} is {observation} after {within}s, not {state}")
        await asyncio.sleep(0.02)
    return observation


async def wait_for_line(
    runtime: Runtime, handle: Handle, line: str, within: float = WAIT
) -> list[str]:
    """Poll ``logs`` until ``line`` was written; return all lines so far."""
    deadline = time.monotonic() + within
    while line not in (lines := await collect(runtime.logs(handle))):
        if time.monotonic() > deadline:
            pytest.fail(f"{handle.instance_id} did not write {line!r} in {within}s: {lines}")
        await asyncio.sleep(0.02)
    return lines


class RuntimeContract:
    """Subclass as ``Test<Backend>Runtime`` and provide the ``runtime`` fixture."""

    #: The program that runs a script, followed by the script.
    shell: ClassVar[Sequence[str]] = ("/bin/sh", "-c")
    #: How long after ``grace`` a program that ignores SIGTERM may take to be killed.
    kill_slack: ClassVar[float] = 2.0

    @pytest.fixture
    def runtime(self) -> Runtime:
        raise NotImplementedError("a RuntimeContract subclass provides the `runtime` fixture")

    def persisted_metadata(self, runtime: Runtime, handle: Handle) -> list[str]:
        """Every piece of text the backend stores or exposes about ``handle`` other than the
        program's own output and files (metadata files, labels, annotations, process titles).
        The suite checks that no env value appears in any of them."""
        raise NotImplementedError("a RuntimeContract subclass says what metadata it keeps")

    @pytest.fixture
    def test_labels(self) -> dict[str, str]:
        return {TEST_LABEL: uuid.uuid4().hex[:16]}

    @pytest.fixture
    def spec_factory(self, test_labels: dict[str, str]) -> SpecFactory:
        def make(
            script: str,
            *,
            env: Mapping[str, str] | None = None,
            labels: Mapping[str, str] | None = None,
            instance_id: str | None = None,
        ) -> LaunchSpec:
            return LaunchSpec(
                instance_id=f"contract-{uuid.uuid4().hex[:12]}"
                if instance_id is None
                else instance_id,
                command=[*self.shell, script],
                env=dict(env or {}),
                labels={**test_labels, **(labels or {})},
            )

        return make

    @pytest.fixture(autouse=True)
    async def _clean_up(self, runtime: Runtime, test_labels: dict[str, str]) -> AsyncIterator[None]:
        yield
        for handle in await runtime.list_owned(test_labels):
            await runtime.stop(handle, grace=0)
            await runtime.remove(handle)

    # -- launch and inspect ----------------------------------------------------------------

    async def test_launch_reports_running(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        spec = spec_factory(IDLE)
        handle = await runtime.launch(spec)
        assert handle.runtime == runtime.name
        assert handle.instance_id == spec.instance_id
        observation = await runtime.inspect(handle)
        assert observation.state is State.RUNNING
        assert observation.started_at is not None
        assert observation.exit_code is None

    async def test_launch_is_idempotent_per_instance_id(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        spec = spec_factory(f"echo started; {IDLE}")
        first = await runtime.launch(spec)
        second = await runtime.launch(spec)
        assert second == first
        concurrent = await asyncio.gather(runtime.launch(spec), runtime.launch(spec))
        assert list(concurrent) == [first, first]
        lines = await wait_for_line(runtime, first, "started")
        await asyncio.sleep(0.2)  # a duplicate would have written its line by now
        assert (await collect(runtime.logs(first))).count("started") == 1, lines
        assert await runtime.list_owned({INSTANCE_LABEL: spec.instance_id}) == [first]

    @pytest.mark.parametrize("code", [0, 3])
    async def test_inspect_reports_the_exit_code_of_an_exited_program(
        self, runtime: Runtime, spec_factory: SpecFactory, code: int
    ) -> None:
        handle = await runtime.launch(spec_factory(f"exit {code}"))
        observation = await wait_for_state(runtime, handle, State.EXITED)
        assert observation.exit_code == code
        assert observation.finished_at is not None
        assert (await runtime.inspect(handle)).exit_code == code  # and it stays so

    async def test_unsafe_instance_ids_are_refused(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        for instance_id in ("../escape", "a/b", ".."):
            with pytest.raises(PermanentError):
                await runtime.launch(spec_factory("exit 0", instance_id=instance_id))

    async def test_an_unknown_handle_is_missing(self, runtime: Runtime) -> None:
        handle = Handle(runtime.name, f"never-{uuid.uuid4().hex[:8]}", "1:1")
        assert (await runtime.inspect(handle)).state is State.MISSING
        assert (await runtime.stop(handle, grace=0)).state is State.MISSING
        await runtime.remove(handle)  # nothing to do, no error

    # -- stop -------------------------------------------------------------------------------

    async def test_stop_lets_a_program_that_traps_term_exit_cleanly(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        script = f"trap 'echo got-term; exit 0' TERM; echo ready; {IDLE}"
        handle = await runtime.launch(spec_factory(script))
        await wait_for_line(runtime, handle, "ready")
        grace = 5.0
        started = time.monotonic()
        observation = await runtime.stop(handle, grace=grace)
        assert time.monotonic() - started < grace  # it was not killed
        assert observation.state is State.EXITED
        assert observation.exit_code == 0
        assert "got-term" in await collect(runtime.logs(handle))

    async def test_stop_kills_a_program_that_ignores_term_after_grace(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        handle = await runtime.launch(spec_factory(f"trap '' TERM; echo ready; {IDLE}"))
        await wait_for_line(runtime, handle, "ready")
        grace = 0.5
        started = time.monotonic()
        observation = await runtime.stop(handle, grace=grace)
        elapsed = time.monotonic() - started
        assert grace <= elapsed < grace + self.kill_slack
        assert observation.state is State.EXITED
        assert observation.exit_code == 128 + signal.SIGKILL
        assert (await runtime.inspect(handle)).state is State.EXITED

    async def test_stop_is_idempotent(self, runtime: Runtime, spec_factory: SpecFactory) -> None:
        handle = await runtime.launch(spec_factory(IDLE))
        first = await runtime.stop(handle, grace=1)
        second = await runtime.stop(handle, grace=1)
        assert first.state is second.state is State.EXITED
        assert first.exit_code is not None
        assert second.exit_code == first.exit_code

    async def test_stopping_an_exited_program_reports_its_exit(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        handle = await runtime.launch(spec_factory("exit 5"))
        await wait_for_state(runtime, handle, State.EXITED)
        observation = await runtime.stop(handle, grace=1)
        assert observation.state is State.EXITED
        assert observation.exit_code == 5

    # -- logs -------------------------------------------------------------------------------

    async def test_logs_hold_stdout_and_stderr(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        handle = await runtime.launch(spec_factory("echo to-stdout; echo to-stderr >&2"))
        await wait_for_state(runtime, handle, State.EXITED)
        assert await collect(runtime.logs(handle)) == ["to-stdout", "to-stderr"]

    async def test_logs_tail_gives_the_last_lines(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        handle = await runtime.launch(spec_factory("for i in 1 2 3 4 5; do echo line-$i; done"))
        await wait_for_state(runtime, handle, State.EXITED)
        assert await collect(runtime.logs(handle, tail=2)) == ["line-4", "line-5"]
        assert await collect(runtime.logs(handle, tail=0)) == []
        assert len(await collect(runtime.logs(handle, tail=50))) == 5

    async def test_logs_follow_yields_lines_as_written_and_ends_when_the_program_exits(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        # The pause is long enough for "one" to be read and inspected on a loaded machine (a
        # pause of 0.4 s once was not, in CI).
        handle = await runtime.launch(spec_factory("echo one; sleep 2; echo two; exit 0"))
        received: list[tuple[str, State]] = []
        async with asyncio.timeout(WAIT):
            async for line in runtime.logs(handle, follow=True):
                received.append((line, (await runtime.inspect(handle)).state))
        assert [line for line, _ in received] == ["one", "two"]
        assert received[0][1] is State.RUNNING  # "one" arrived while the program still ran
        assert (await runtime.inspect(handle)).state is State.EXITED

    async def test_logs_follow_with_tail_starts_from_the_last_lines(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        script = "echo a; echo b; echo c; sleep 0.3; echo d"
        handle = await runtime.launch(spec_factory(script))
        await wait_for_line(runtime, handle, "c")
        async with asyncio.timeout(WAIT):
            lines = await collect(runtime.logs(handle, follow=True, tail=1))
        assert lines == ["c", "d"]

    # -- list_owned and remove ---------------------------------------------------------------

    async def test_list_owned_finds_running_and_exited_instances_and_filters_by_labels(
        self, runtime: Runtime, spec_factory: SpecFactory, test_labels: dict[str, str]
    ) -> None:
        running = await runtime.launch(spec_factory(IDLE, labels={"role": "a"}))
        exited = await runtime.launch(spec_factory("exit 0", labels={"role": "b"}))
        await wait_for_state(runtime, exited, State.EXITED)

        owned = await runtime.list_owned(test_labels)
        assert {h.instance_id for h in owned} == {running.instance_id, exited.instance_id}
        for handle in owned:
            assert handle.labels[INSTANCE_LABEL] == handle.instance_id
            assert OWNER_LABEL in handle.labels
            assert handle.labels[TEST_LABEL] == test_labels[TEST_LABEL]
        assert await runtime.list_owned({**test_labels, "role": "a"}) == [running]
        assert await runtime.list_owned({**test_labels, "role": "c"}) == []

    async def test_remove_forgets_an_instance(
        self, runtime: Runtime, spec_factory: SpecFactory, test_labels: dict[str, str]
    ) -> None:
        handle = await runtime.launch(spec_factory("echo bye"))
        await wait_for_state(runtime, handle, State.EXITED)
        await runtime.remove(handle)
        assert await runtime.list_owned(test_labels) == []
        assert (await runtime.inspect(handle)).state is State.MISSING
        assert await collect(runtime.logs(handle)) == []
        await runtime.remove(handle)  # idempotent

    async def test_remove_of_a_running_instance_ends_it(
        self, runtime: Runtime, spec_factory: SpecFactory, test_labels: dict[str, str]
    ) -> None:
        handle = await runtime.launch(spec_factory(IDLE))
        await runtime.remove(handle)
        assert await runtime.list_owned(test_labels) == []
        assert (await runtime.inspect(handle)).state is State.MISSING

    # -- environment -------------------------------------------------------------------------

    async def test_env_reaches_the_program(
        self, runtime: Runtime, spec_factory: SpecFactory
    ) -> None:
        spec = spec_factory('echo "greeting=$GREETING"', env={"GREETING": "hello there"})
        handle = await runtime.launch(spec)
        await wait_for_state(runtime, handle, State.EXITED)
        assert await collect(runtime.logs(handle)) == ["greeting=hello there"]

    async def test_env_values_never_appear_in_metadata(
        self, runtime: Runtime, spec_factory: SpecFactory, test_labels: dict[str, str]
    ) -> None:
        secret = f"s3cr3t-{uuid.uuid4().hex}"
        spec = spec_factory(IDLE, env={"API_KEY": secret})
        handle = await runtime.launch(spec)
        texts = [
            repr(spec),
            repr(handle),
            repr(await runtime.inspect(handle)),
            repr(await runtime.list_owned(test_labels)),
            *self.persisted_metadata(runtime, handle),
        ]
        await runtime.stop(handle, grace=0)
        texts += [*self.persisted_metadata(runtime, handle), repr(await runtime.inspect(handle))]
        for text in texts:
            assert secret not in text
