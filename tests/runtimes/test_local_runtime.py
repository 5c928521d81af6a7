"""The local runtime: the shared Runtime contract, plus what only local processes can show
(directories and files, /proc, adoption after a control-plane restart, log rotation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from clawfleet.core.errors import InvalidInput, PermanentError
from clawfleet.runtimes.base import (
    INSTANCE_LABEL,
    OWNER_LABEL,
    Handle,
    LaunchSpec,
    Runtime,
    State,
)
from clawfleet.runtimes.local import LocalRuntime
from clawfleet.runtimes.local_logs import LogFollower, backup_path, read_tail, rotate_file
from clawfleet.runtimes.local_process import read_proc_stat
from clawfleet.runtimes.local_records import InstancePaths, InstanceRecord, save_record
from clawfleet.testing.clock import FakeClock
from clawfleet.testing.runtime_contract import (
    IDLE,
    RuntimeContract,
    collect,
    wait_for_line,
    wait_for_state,
)


class TestLocalRuntime(RuntimeContract):
    @pytest.fixture
    def runtime(self, tmp_path: Path) -> LocalRuntime:
        return LocalRuntime(tmp_path / "instances")

    def persisted_metadata(self, runtime: Runtime, handle: Handle) -> list[str]:
        assert isinstance(runtime, LocalRuntime)
        instance_dir = runtime.root / handle.instance_id
        texts = [path.read_text() for path in instance_dir.iterdir() if path.is_file()]
        with contextlib.suppress(FileNotFoundError):  # the process title
            texts.append(Path(f"/proc/{_pid(handle)}/cmdline").read_bytes().decode())
        return texts


# -- local-only tests ------------------------------------------------------------------------

MakeRuntime = Callable[..., LocalRuntime]


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[MakeRuntime]:
    """LocalRuntimes on one root; several of them model control-plane restarts."""
    made: list[LocalRuntime] = []

    def make(**kwargs: Any) -> LocalRuntime:
        made.append(LocalRuntime(tmp_path / "instances", **kwargs))
        return made[-1]

    yield make
    for runtime in made:
        for handle in await runtime.list_owned():
            await runtime.stop(handle, grace=0)
    for runtime in made:
        await runtime.list_owned()  # reaps the children each one started


@pytest.fixture
def runtime(make_runtime: MakeRuntime) -> LocalRuntime:
    return make_runtime()


def sh(
    script: str,
    *,
    instance_id: str | None = None,
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> LaunchSpec:
    return LaunchSpec(
        instance_id=f"local-{uuid.uuid4().hex[:8]}" if instance_id is None else instance_id,
        command=["/bin/sh", "-c", script],
        env=dict(env or {}),
        labels=dict(labels or {}),
    )


def _pid(handle: Handle) -> int:
    return int(handle.ref.split(":")[0])


def _gone(pid: int) -> bool:
    stat = read_proc_stat(pid)
    return stat is None or stat.state == "Z"


async def _wait_gone(pid: int, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not _gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        await asyncio.sleep(0.02)


def _live_processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and not _gone(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def test_name_and_capabilities(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path)
    assert runtime.name == "local"
    assert runtime.capabilities.isolation == "process"
    assert runtime.capabilities.survives_control_plane_restart
    assert not runtime.capabilities.resource_limits
    assert runtime.capabilities.log_follow


async def test_an_instance_gets_a_private_directory_and_metadata_without_env(
    make_runtime: MakeRuntime,
) -> None:
    clock = FakeClock()
    runtime = make_runtime(clock=clock, owner="team-a")
    spec = sh("pwd", env={"TOKEN": "hunter2"}, labels={"agent": "reviewer"})
    handle = await runtime.launch(spec)
    await wait_for_state(runtime, handle, State.EXITED)

    paths = InstancePaths(runtime.root / spec.instance_id)
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700
    assert await collect(runtime.logs(handle)) == [str(paths.work)]
    assert stat.S_IMODE(paths.log.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.metadata.stat().st_mode) == 0o600

    doc = json.loads(paths.metadata.read_text())
    assert handle.ref == f"{doc['pid']}:{doc['starttime']}"
    assert doc["instance_id"] == spec.instance_id
    assert doc["command"] == list(spec.command)
    assert doc["labels"] == {
        "agent": "reviewer",
        OWNER_LABEL: "team-a",
        INSTANCE_LABEL: spec.instance_id,
    }
    assert doc["launched_at"] == clock.now().isoformat()
    assert doc["exit_code"] == 0
    assert "hunter2" not in paths.metadata.read_text()
    assert "TOKEN" not in paths.metadata.read_text()


async def test_the_handle_names_the_process_and_its_start_time(runtime: LocalRuntime) -> None:
    handle = await runtime.launch(sh(IDLE))
    proc = read_proc_stat(_pid(handle))
    assert proc is not None
    assert handle.ref == f"{_pid(handle)}:{proc.starttime}"
    assert proc.pgrp == _pid(handle)  # its own process group
    assert os.getsid(_pid(handle)) == _pid(handle)  # and session


@pytest.mark.parametrize("instance_id", ["", ".", "..", "a/b", "../x", "a\0b", "x" * 129])
async def test_unsafe_instance_ids_are_refused_before_anything_is_created(
    runtime: LocalRuntime, instance_id: str
) -> None:
    with pytest.raises(PermanentError, match="instance id"):
        await runtime.launch(sh("exit 0", instance_id=instance_id))
    assert not runtime.root.exists()


async def test_a_128_character_instance_id_is_fine(runtime: LocalRuntime) -> None:
    handle = await runtime.launch(sh("exit 0", instance_id="x" * 128))
    assert (await wait_for_state(runtime, handle, State.EXITED)).exit_code == 0


@pytest.mark.parametrize(
    "command",
    [["/nonexistent/agent"], ["no-such-program-on-the-path"], ["{not_executable}"]],
)
async def test_a_program_that_cannot_run_is_a_permanent_error_naming_it(
    runtime: LocalRuntime, tmp_path: Path, command: list[str]
) -> None:
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("echo hi\n")
    command = [arg.format(not_executable=not_executable) for arg in command]
    spec = LaunchSpec(instance_id="broken", command=command)
    with pytest.raises(PermanentError, match="cannot start program") as caught:
        await runtime.launch(spec)
    assert command[0] in str(caught.value)
    assert await runtime.list_owned() == []
    assert not (runtime.root / "broken").exists()


async def test_an_empty_command_is_a_permanent_error(runtime: LocalRuntime) -> None:
    with pytest.raises(PermanentError, match="empty command"):
        await runtime.launch(LaunchSpec(instance_id="empty", command=[]))


async def test_the_control_plane_environment_does_not_leak_into_the_instance(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAWFLEET_LEAK_CHECK", "leaked")
    handle = await runtime.launch(sh('echo "${CLAWFLEET_LEAK_CHECK-unset}"', env={"A": "1"}))
    await wait_for_state(runtime, handle, State.EXITED)
    assert await collect(runtime.logs(handle)) == ["unset"]


async def test_the_instance_does_not_inherit_open_sockets(runtime: LocalRuntime) -> None:
    script = (
        "import os\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try: print(os.readlink(f'/proc/self/fd/{fd}'))\n"
        "    except OSError: pass\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        handle = await runtime.launch(LaunchSpec("fds", [sys.executable, "-c", script]))
        await wait_for_state(runtime, handle, State.EXITED)
    targets = await collect(runtime.logs(handle))
    assert targets
    assert not [target for target in targets if target.startswith("socket:")]


async def test_exited_children_are_reaped(runtime: LocalRuntime) -> None:
    handle = await runtime.launch(sh("exit 0"))
    await wait_for_state(runtime, handle, State.EXITED)
    assert read_proc_stat(_pid(handle)) is None  # not even a zombie


async def test_stop_ends_the_whole_process_group(runtime: LocalRuntime) -> None:
    # The leader dies on TERM; a child that ignores TERM is killed with the Instance.
    stubborn = 'trap "" TERM; echo child $$; while :; do sleep 1; done'
    handle = await runtime.launch(sh(f"sh -c '{stubborn}' & wait"))
    deadline = time.monotonic() + 5
    while not (lines := await collect(runtime.logs(handle))):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    child = int(lines[0].split()[1])
    observation = await runtime.stop(handle, grace=5)
    assert observation.exit_code == 128 + 15
    await _wait_gone(child)


async def test_an_exited_instance_is_launched_again_and_its_log_grows(
    runtime: LocalRuntime,
) -> None:
    spec = sh("echo run")
    first = await runtime.launch(spec)
    await wait_for_state(runtime, first, State.EXITED)
    second = await runtime.launch(spec)
    assert second.ref != first.ref
    await wait_for_state(runtime, second, State.EXITED)
    assert await collect(runtime.logs(second)) == ["run", "run"]
    assert (await runtime.inspect(first)).state is State.MISSING  # superseded
    await runtime.remove(first)  # removes nothing of the newer launch
    assert await runtime.list_owned() == [second]


async def test_logs_refuse_a_negative_tail(runtime: LocalRuntime) -> None:
    handle = await runtime.launch(sh("exit 0"))
    with pytest.raises(InvalidInput):
        await collect(runtime.logs(handle, tail=-1))


async def test_a_last_line_without_newline_is_still_a_line(runtime: LocalRuntime) -> None:
    handle = await runtime.launch(sh("echo first; printf 'no-newline'"))
    async with asyncio.timeout(5):
        assert await collect(runtime.logs(handle, follow=True)) == ["first", "no-newline"]
    assert await collect(runtime.logs(handle)) == ["first", "no-newline"]
    assert await collect(runtime.logs(handle, tail=1)) == ["no-newline"]


# -- a control-plane restart -----------------------------------------------------------------


async def test_a_new_runtime_adopts_what_an_earlier_one_launched(
    make_runtime: MakeRuntime,
) -> None:
    first = make_runtime()
    marker = f"marker-{uuid.uuid4().hex}"
    spec = sh(f": {marker}; echo started; {IDLE}")
    handle = await first.launch(spec)
    await wait_for_line(first, handle, "started")

    second = make_runtime()  # the control plane restarted
    assert await second.list_owned() == [handle]
    assert (await second.inspect(handle)).state is State.RUNNING
    assert await second.launch(spec) == handle  # no duplicate
    await asyncio.sleep(0.1)
    assert _live_processes_with(marker) == [_pid(handle)]
    assert await collect(second.logs(handle)) == ["started"]

    follow = asyncio.create_task(collect(second.logs(handle, follow=True)))
    observation = await second.stop(handle, grace=2)
    assert observation.state is State.EXITED
    assert observation.exit_code is None  # not its child: the code is unknown
    assert "unknown" in observation.detail
    assert _live_processes_with(marker) == []
    async with asyncio.timeout(5):
        assert await follow == ["started"]

    # The original parent still learns (and records) the real exit code.
    assert (await first.inspect(handle)).exit_code == 128 + 15
    assert (await make_runtime().inspect(handle)).exit_code == 128 + 15


async def test_a_recorded_exit_code_survives_a_restart(make_runtime: MakeRuntime) -> None:
    first = make_runtime()
    handle = await first.launch(sh("exit 4"))
    await wait_for_state(first, handle, State.EXITED)
    observation = await make_runtime().inspect(handle)
    assert observation.state is State.EXITED
    assert observation.exit_code == 4
    assert observation.finished_at is not None


async def test_a_reused_pid_is_not_mistaken_for_the_instance(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    # A live process whose pid matches the record but whose start time does not.
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        proc = read_proc_stat(stranger.pid)
        assert proc is not None
        paths = InstancePaths(runtime.root / "reused")
        paths.dir.mkdir(parents=True)
        record = InstanceRecord(
            instance_id="reused",
            pid=stranger.pid,
            starttime=proc.starttime - 1,
            command=("sleep", "30"),
            launched_at=FakeClock().now(),
            labels={OWNER_LABEL: runtime.owner, INSTANCE_LABEL: "reused"},
        )
        save_record(paths, record)
        [handle] = await runtime.list_owned()
        assert (await runtime.inspect(handle)).state is State.EXITED
        assert (await runtime.stop(handle, grace=0)).state is State.EXITED
        assert stranger.poll() is None  # never signalled
        relaunched = await runtime.launch(sh("exit 0", instance_id="reused"))
        assert relaunched.ref != handle.ref
    finally:
        stranger.kill()
        stranger.wait()


async def test_list_owned_skips_corrupt_metadata_and_other_owners(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = make_runtime()
    other = make_runtime(owner="someone-else")
    mine = await runtime.launch(sh("exit 0", instance_id="mine"))
    theirs = await other.launch(sh("exit 0", instance_id="theirs"))
    (runtime.root / "corrupt").mkdir()
    (runtime.root / "corrupt" / "instance.json").write_text("{not json")
    (runtime.root / "renamed").mkdir()
    (runtime.root / "renamed" / "instance.json").write_text(
        (runtime.root / "mine" / "instance.json").read_text()
    )
    (runtime.root / "stray-file").write_text("")

    with caplog.at_level(logging.WARNING):
        assert await runtime.list_owned() == [mine]
    assert await other.list_owned() == [theirs]
    assert "corrupt" in caplog.text
    assert "renamed" in caplog.text


# -- log rotation ----------------------------------------------------------------------------


async def test_rotate_logs_copies_and_truncates_while_the_program_keeps_writing(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(log_max_bytes=1000, log_backups=2)
    pad = "x" * 40
    script = (
        f"i=0; while [ $i -lt 30 ]; do echo line-$i-{pad}; i=$((i+1)); done; echo filled; "
        "while [ ! -e go ]; do sleep 0.02; done; echo after-rotation"
    )
    handle = await runtime.launch(sh(script, instance_id="chatty"))
    quiet = await runtime.launch(sh("echo short", instance_id="quiet"))
    await wait_for_line(runtime, handle, "filled")
    await wait_for_state(runtime, quiet, State.EXITED)

    assert await runtime.rotate_logs() == ["chatty"]
    paths = InstancePaths(runtime.root / "chatty")
    assert paths.log.stat().st_size == 0
    assert backup_path(paths.log, 1).read_text().splitlines()[-1] == "filled"
    assert stat.S_IMODE(backup_path(paths.log, 1).stat().st_mode) == 0o600

    (paths.work / "go").touch()
    await wait_for_state(runtime, handle, State.EXITED)
    assert paths.log.read_bytes() == b"after-rotation\n"  # appended at 0: no hole
    lines = await collect(runtime.logs(handle))
    assert len(lines) == 32
    assert lines[0] == f"line-0-{pad}"
    assert lines[-2:] == ["filled", "after-rotation"]
    assert await collect(runtime.logs(handle, tail=2)) == ["filled", "after-rotation"]
    assert await runtime.rotate_logs() == []


async def test_maintain_rotates_the_logs_that_grew_too_large(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(log_max_bytes=100, log_backups=1)
    handle = await runtime.launch(sh(f"echo {'y' * 200}", instance_id="big"))
    await wait_for_state(runtime, handle, State.EXITED)
    await runtime.maintain()
    paths = InstancePaths(runtime.root / "big")
    assert paths.log.stat().st_size == 0
    assert backup_path(paths.log, 1).read_text() == "y" * 200 + "\n"


def test_rotate_file_keeps_the_configured_number_of_backups(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    for generation in range(1, 5):
        log.write_text(f"gen-{generation}\n")
        rotate_file(log, backups=2)
    assert log.read_text() == ""
    assert backup_path(log, 1).read_text() == "gen-4\n"
    assert backup_path(log, 2).read_text() == "gen-3\n"
    assert not backup_path(log, 3).exists()

    bare = tmp_path / "bare.log"
    bare.write_text("data\n")
    rotate_file(bare, backups=0)
    assert bare.read_text() == ""
    assert not backup_path(bare, 1).exists()


async def test_long_logs_read_whole_and_tailed_across_chunks(runtime: LocalRuntime) -> None:
    pad = "y" * 60
    handle = await runtime.launch(sh(f"seq -f 'line-%g-{pad}' 1 3000"))  # about 200 KiB
    await wait_for_state(runtime, handle, State.EXITED)
    expected = [f"line-{i}-{pad}" for i in range(1, 3001)]
    assert await collect(runtime.logs(handle)) == expected
    assert await collect(runtime.logs(handle, tail=2500)) == expected[-2500:]


def test_tail_joins_a_line_split_by_rotation(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    backup_path(log, 2).write_bytes(b"old-1\nold-2\n")
    backup_path(log, 1).write_bytes(b"a\nb\npart")
    log.write_bytes(b"ial\nc\nunfinished")
    newest_first = [log, backup_path(log, 1), backup_path(log, 2)]
    size = log.stat().st_size
    assert read_tail(newest_first, size, 2) == (["partial", "c"], b"unfinished")
    assert read_tail(newest_first, size, 3) == (["b", "partial", "c"], b"unfinished")
    assert read_tail(newest_first, size, 99)[0] == ["old-1", "old-2", "a", "b", "partial", "c"]
    assert read_tail(newest_first, size, 0) == ([], b"unfinished")


def test_a_follower_picks_up_what_it_missed_from_the_fresh_backup(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    log.write_bytes(b"a\n")
    follower = LogFollower(log, offset=2)
    with log.open("ab") as writer:
        writer.write(b"b\nc\n")
        writer.flush()
        rotate_file(log, backups=1)
        writer.write(b"d\n")
    assert follower.read() == b"b\nc\nd\n"
    assert follower.read() == b""


def test_a_follower_starts_over_when_the_log_is_truncated_without_backup(
    tmp_path: Path,
) -> None:
    log = tmp_path / "instance.log"
    log.write_bytes(b"0123456789\n")
    follower = LogFollower(log, offset=11)
    rotate_file(log, backups=0)
    log.write_bytes(b"x\n")
    assert follower.read() == b"x\n"


async def test_follow_keeps_going_across_a_rotation(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(log_max_bytes=50, log_backups=1)
    script = (
        "for i in 1 2 3 4 5 6 7 8 9 10; do echo before-$i; done; "
        "while [ ! -e go ]; do sleep 0.02; done; echo after-1; echo after-2"
    )
    handle = await runtime.launch(sh(script, instance_id="rotating"))
    received: list[str] = []

    async def follow() -> None:
        async for line in runtime.logs(handle, follow=True):
            received.append(line)

    task = asyncio.create_task(follow())
    deadline = time.monotonic() + 5
    while "before-10" not in received:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert await runtime.rotate_logs() == ["rotating"]
    (runtime.root / "rotating" / "work" / "go").touch()
    async with asyncio.timeout(5):
        await task
    assert received == [*(f"before-{i}" for i in range(1, 11)), "after-1", "after-2"]
