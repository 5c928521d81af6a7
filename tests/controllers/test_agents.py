"""The agent controller in fake time: what a user does, and what the fleet then looks like.

Each test drives the controller pass by pass against the real store and a FakeRuntime, playing
the runners itself (see ``conftest.Fleet``); "the same handle" (``status.ref``) means the same
process.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from clawfleet.core.errors import PermanentError, TemporaryError
from clawfleet.runtimes.base import LaunchSpec
from clawfleet.store.tables import resources
from tests.controllers.conftest import LOST_AFTER, Fleet
from tests.factories import agent, secret


def phases(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["status"]["phase"] for item in items)


# -- scale vs. spec change -------------------------------------------------------------------


async def test_scaling_up_keeps_the_running_instances(fleet: Fleet) -> None:
    """B1: scaling 2 → 3 leaves the two running instances alone (same handles)."""
    await fleet.agent("zed", replicas=2)
    before = fleet.refs(await fleet.up())
    assert len(before) == 2
    await fleet.post("/agents/zed/scale", {"replicas": 3})
    after = fleet.refs(await fleet.up())
    assert len(after) == 3
    assert {name: after[name] for name in before} == before
    assert len(fleet.runtime.launched) == 3
    assert fleet.runtime.stopped == []


async def test_sleep_and_wake_keep_the_running_instances(fleet: Fleet) -> None:
    """B1: `agent sleep` (until the agent is idle long enough) and `agent wake` restart nothing."""
    await fleet.agent("zed", replicas=2)
    before = fleet.refs(await fleet.up())
    await fleet.post("/agents/zed/sleep")
    await fleet.heartbeat()
    assert fleet.refs(await fleet.up()) == before
    await fleet.post("/agents/zed/wake")
    assert fleet.refs(await fleet.up()) == before
    assert fleet.runtime.stopped == []


async def test_scaling_down_stops_idle_instances_first(fleet: Fleet) -> None:
    await fleet.agent("zed", replicas=3)
    items = await fleet.up()
    busy = items[1]["metadata"]["uid"]
    await fleet.submit("zed")
    await fleet.claim(busy)
    await fleet.post("/agents/zed/scale", {"replicas": 1})
    await fleet.reconcile(2)  # asked to stop, then draining
    assert phases(await fleet.instances()) == ["Running", "Stopping", "Stopping"]
    await fleet.stop_drained()
    [kept] = await fleet.instances()
    assert kept["metadata"]["uid"] == busy
    stopped = [i for i in await fleet.instances(stopped=True) if i["metadata"]["uid"] != busy]
    assert phases(stopped) == ["Stopped", "Stopped"]
    for item in stopped:
        assert await fleet.reasons(item["metadata"]["name"]) == [
            "Launched", "ScaledDown", "Stopping", "Stopped"
        ]  # fmt: skip


async def test_a_command_change_replaces_idle_instances_and_busy_ones_once_idle(
    fleet: Fleet,
) -> None:
    await fleet.agent("zed", replicas=2)
    items = await fleet.up()
    before = fleet.refs(items)
    busy, idle = items[0], items[1]
    await fleet.submit("zed")
    run = await fleet.claim(busy["metadata"]["uid"])
    await fleet.agent("zed", replicas=2, command=["sh", "-c", "cat -u"])
    after = fleet.refs(await fleet.up())
    assert after[busy["metadata"]["name"]] == before[busy["metadata"]["name"]]
    assert after[idle["metadata"]["name"]] != before[idle["metadata"]["name"]]
    assert "Updated" in await fleet.reasons(idle["metadata"]["name"])
    await fleet.complete(busy["metadata"]["uid"], run)
    final = fleet.refs(await fleet.up())
    assert final[busy["metadata"]["name"]] != before[busy["metadata"]["name"]]
    assert final[idle["metadata"]["name"]] == after[idle["metadata"]["name"]]
    revisions = {i["spec"]["revision"] for i in await fleet.instances()}
    assert len(revisions) == 1 and revisions != {busy["spec"]["revision"]}


# -- crashes, restarts, lost -----------------------------------------------------------------


async def test_a_crash_loop_backs_off_exponentially_up_to_a_cap(fleet: Fleet) -> None:
    await fleet.agent("zed")
    [item] = await fleet.up()
    uid, name = item["metadata"]["uid"], item["metadata"]["name"]
    delays = []
    for _ in range(8):
        fleet.runtime.exit(uid, 1)
        await fleet.reconcile()
        [crashed] = await fleet.instances()
        assert crashed["status"]["phase"] == "CrashLoop"
        message = (await fleet.messages(name, "Crashed"))[-1]
        delays.append(float(message.rsplit("next try in ", 1)[1].rstrip("s")))
        fleet.clock.advance(delays[-1] - 0.5)
        await fleet.reconcile()  # still waiting
        assert (await fleet.instances())[0]["status"]["phase"] == "CrashLoop"
        fleet.clock.advance(0.5)
        await fleet.reconcile()  # relaunched
        assert (await fleet.instances())[0]["status"]["phase"] == "Starting"
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert (await fleet.instance(name))["status"]["restarts"] == 8
    assert (await fleet.agent_status("zed"))["restarts"] == 8


async def test_a_restart_whose_launch_fails_honours_its_backoff(fleet: Fleet) -> None:
    """B2: restart + a missing secret: one instance, one try per backoff, then recovery."""
    await fleet.apply(secret("gh", token="t0k3n-value-1234"))
    await fleet.agent("uses", secretEnv={"TOKEN": {"secret": "gh", "key": "token"}})
    [instance] = await fleet.up()
    name = instance["metadata"]["name"]
    await fleet.delete("/secrets/gh")
    await fleet.post(f"/instances/{name}/restart")
    await fleet.reconcile(3)  # no time passes: one try, then its backoff holds
    [instance] = await fleet.instances()
    assert instance["metadata"]["name"] == name
    assert instance["status"]["phase"] == "CrashLoop"
    assert (await fleet.reasons(name)).count("ConfigError") == 1
    assert (await fleet.agent_status("uses"))["phase"] == "Degraded"
    fleet.clock.advance(5)
    await fleet.reconcile(2)
    assert (await fleet.reasons(name)).count("ConfigError") == 2
    assert len(await fleet.instances()) == 1
    await fleet.apply(secret("gh", token="t0k3n-value-1234"))
    fleet.clock.advance(5)
    [instance] = await fleet.up()
    assert instance["metadata"]["name"] == name
    assert instance["status"]["phase"] == "Running"
    assert (await fleet.agent_status("uses"))["phase"] == "Running"


async def test_a_silent_instance_is_marked_lost_then_replaced(fleet: Fleet) -> None:
    await fleet.agent("zed")
    [item] = await fleet.up()
    name, ref = item["metadata"]["name"], item["status"]["ref"]
    fleet.clock.advance(LOST_AFTER - 1)
    await fleet.reconcile()
    assert (await fleet.instance(name))["status"]["phase"] == "Running"
    fleet.clock.advance(2)
    await fleet.reconcile()
    assert (await fleet.instance(name))["status"]["phase"] == "Lost"
    fleet.clock.advance(1)
    [replaced] = await fleet.up()
    assert replaced["metadata"]["name"] == name
    assert replaced["status"]["phase"] == "Running"
    assert replaced["status"]["ref"] != ref
    assert replaced["status"]["restarts"] == 1
    assert await fleet.reasons(name) == ["Launched", "Lost", "Replaced"]


async def test_a_lost_instance_that_heartbeats_again_is_kept(fleet: Fleet) -> None:
    await fleet.agent("zed")
    [item] = await fleet.up()
    fleet.clock.advance(LOST_AFTER + 1)
    await fleet.reconcile()
    await fleet.heartbeat()
    await fleet.reconcile()
    [kept] = await fleet.instances()
    assert kept["status"]["phase"] == "Running"
    assert kept["status"]["ref"] == item["status"]["ref"]


async def test_a_stopped_instance_is_replaced(fleet: Fleet) -> None:
    await fleet.agent("zed")
    [item] = await fleet.up()
    await fleet.post(f"/instances/{item['metadata']['name']}/stop")
    await fleet.reconcile()
    await fleet.stop_drained()
    [replacement] = await fleet.up()
    assert replacement["metadata"]["name"] != item["metadata"]["name"]
    assert replacement["status"]["phase"] == "Running"


# -- launch errors -----------------------------------------------------------------------------


async def test_a_launch_the_runtime_refuses_crash_loops_and_is_retried(fleet: Fleet) -> None:
    fleet.runtime.fail_launches(PermanentError("no such program"))
    await fleet.agent("zed")
    await fleet.reconcile(2)
    [item] = await fleet.instances()
    assert item["status"]["phase"] == "CrashLoop"
    assert item["status"]["lastError"] == "no such program"
    assert await fleet.messages(item["metadata"]["name"], "LaunchFailed") == [
        "no such program; next try in 30s"
    ]
    fleet.clock.advance(30)
    [item] = await fleet.up()
    assert item["status"]["phase"] == "Running"


async def test_a_temporary_launch_error_retries_the_agent_after_its_delay(fleet: Fleet) -> None:
    fleet.runtime.fail_launches(TemporaryError("out of pids", delay=10), times=1)
    await fleet.agent("zed")
    await fleet.reconcile()
    launches = len(fleet.runtime.launched)
    fleet.clock.advance(9)
    await fleet.reconcile()
    assert len(fleet.runtime.launched) == launches  # the agent waits out the delay
    fleet.clock.advance(1)
    [item] = await fleet.up()
    assert item["status"]["phase"] == "Running"


# -- permanent errors mark the agent failed --------------------------------------------------


async def test_an_agent_on_a_runtime_this_plane_lacks_is_failed(fleet: Fleet) -> None:
    await fleet.agent("zed", runtime="docker")
    await fleet.reconcile(2)
    status = await fleet.agent_status("zed")
    assert status["phase"] == "Failed"
    assert "runtime 'docker' is not available" in status["lastError"]
    assert fleet.runtime.launched == []
    await fleet.agent("zed", runtime="local")  # fixed: a new generation is reconciled
    await fleet.up()
    assert (await fleet.agent_status("zed"))["phase"] == "Running"


async def test_a_stored_spec_that_no_longer_validates_marks_the_agent_failed(
    fleet: Fleet,
) -> None:
    await fleet.agent("zed")
    async with fleet.db.write() as conn:  # as an older or newer version might have left it
        await conn.execute(
            update(resources).where(resources.c.name == "zed").values(spec={"adapter": "x"})
        )
    await fleet.reconcile()
    status = await fleet.agent_status("zed")
    assert status["phase"] == "Failed"
    assert "spec.adapter" in status["lastError"]
    assert fleet.runtime.launched == []


# -- sleep and wake ----------------------------------------------------------------------------


async def test_an_idle_agent_sleeps_and_work_wakes_it(fleet: Fleet) -> None:
    await fleet.agent("zed", idleTimeout="30s")
    await fleet.up()
    await fleet.run_for(25)
    assert (await fleet.agent_status("zed"))["phase"] == "Running"
    await fleet.run_for(5)
    assert "Slept" in await fleet.agent_reasons("zed")
    await fleet.reconcile()
    await fleet.stop_drained()
    assert await fleet.instances() == []
    assert (await fleet.agent_status("zed"))["phase"] == "Sleeping"
    await fleet.submit("zed")
    [woken] = await fleet.up()
    assert woken["status"]["phase"] == "Running"
    assert (await fleet.agent_reasons("zed"))[-1] == "Woke"
    assert (await fleet.agent_status("zed"))["phase"] == "Running"


async def test_a_new_sleeping_agent_runs_nothing_until_work_arrives(fleet: Fleet) -> None:
    await fleet.agent("zed", state="Sleeping", idleTimeout="2s")
    await fleet.reconcile(2)
    assert await fleet.instances() == []
    assert (await fleet.agent_status("zed"))["phase"] == "Sleeping"
    assert await fleet.agent_reasons("zed") == []
    await fleet.submit("zed")
    [woken] = await fleet.up()
    assert woken["status"]["phase"] == "Running"
    assert await fleet.agent_reasons("zed") == ["Woke"]


async def test_the_idle_timer_survives_a_controller_restart(fleet: Fleet) -> None:
    """B12: the idle time is kept in the agent's status, not in the controller's memory."""
    await fleet.agent("zed", idleTimeout="60s")
    await fleet.up()
    await fleet.run_for(40)
    fleet.controller = fleet.new_controller()
    await fleet.run_for(20)
    assert "Slept" in await fleet.agent_reasons("zed")
    assert (await fleet.agent_status("zed"))["lastBusyAt"] is not None


# -- instances nobody wants --------------------------------------------------------------------


async def test_instances_of_a_deleted_agent_are_stopped(fleet: Fleet) -> None:
    await fleet.agent("zed", replicas=2)
    await fleet.up()
    await fleet.delete("/agents/zed")
    await fleet.reconcile()
    assert await fleet.instances() == []
    assert phases(await fleet.instances(stopped=True)) == ["Stopped", "Stopped"]
    assert fleet.runtime.running() == []


async def test_orphans_are_stopped_and_removed(fleet: Fleet) -> None:
    """A runtime instance the store does not know (its row is gone) is stopped and removed."""
    orphan = await fleet.runtime.launch(LaunchSpec("ghost", ["clawfleet-runner"]))
    await fleet.agent("zed")
    await fleet.up()
    assert orphan in fleet.runtime.stopped
    assert orphan in fleet.runtime.removed
    assert len(fleet.runtime.running()) == 1


@pytest.mark.parametrize("how", ["scaled to zero", "agent deleted"])
async def test_a_stopped_instance_is_removed_after_its_retention(fleet: Fleet, how: str) -> None:
    """B10: what a stopped instance left (work dir, logs) goes once its logs are no longer
    kept; until then the runtime still has it, so `clawfleet logs` can read it."""
    await fleet.agent("zed")
    [item] = await fleet.up()
    name = item["metadata"]["name"]
    if how == "scaled to zero":
        await fleet.post("/agents/zed/scale", {"replicas": 0})
        await fleet.reconcile(2)  # asked to stop, then draining
        await fleet.stop_drained()
    else:
        await fleet.delete("/agents/zed")
        await fleet.reconcile()
    assert (await fleet.instance(name))["status"]["phase"] == "Stopped"
    [handle] = await fleet.runtime.list_owned()
    fleet.clock.advance(fleet.config.stopped_retention - 60)
    await fleet.reconcile()
    assert fleet.runtime.removed == []
    assert (await fleet.api.get(f"/api/v1/instances/{name}")).status_code == 200
    fleet.clock.advance(61)
    await fleet.reconcile()
    assert fleet.runtime.removed == [handle]
    assert await fleet.runtime.list_owned() == []
    assert (await fleet.api.get(f"/api/v1/instances/{name}")).status_code == 404


async def test_a_runner_receives_the_revision_the_controller_compares(fleet: Fleet) -> None:
    await fleet.apply(agent("zed", env={"MODE": "fast"}))
    await fleet.reconcile()
    [instance] = await fleet.instances()
    answer = await fleet.state.dispatcher.protocol.register(instance["metadata"]["uid"])
    assert answer["revision"] == instance["spec"]["revision"]
    assert len(answer["revision"]) == 64
    assert answer["bundle"]["command"] == ["sh", "-c", "cat"]
    assert answer["bundle"]["envNames"] == ["MODE"]


async def test_a_stopping_runner_that_heartbeats_but_never_exits_is_stopped_in_time(
    fleet: Fleet,
) -> None:
    """The drain deadline runs from the stop, not from the runner's last heartbeat."""
    await fleet.agent("zed", replicas=1)
    [item] = await fleet.up()
    uid, name = item["metadata"]["uid"], item["metadata"]["name"]
    await fleet.post(f"/instances/{name}/stop")
    await fleet.reconcile()
    assert (await fleet.instance(name))["status"]["phase"] == "Stopping"
    for _ in range(7):  # 35 s, past the 30 s drain timeout; the runner heartbeats throughout
        fleet.clock.advance(5)
        await fleet.state.dispatcher.protocol.heartbeat(uid, "busy", [], [])
        await fleet.reconcile()
    assert (await fleet.instance(name))["status"]["phase"] == "Stopped"
    assert await fleet.reasons(name) == ["Launched", "StopRequested", "Stopping", "Stopped"]


async def test_a_large_replica_count_is_launched_in_steps(fleet: Fleet) -> None:
    await fleet.agent("many", replicas=45)

    await fleet.reconcile(2)  # nothing registered: no more launches than max_starting
    assert len(fleet.runtime.launched) == 20  # max_starting, by default
    status = await fleet.agent_status("many")
    assert (status["replicas"], status["instances"]) == (45, 20)

    await fleet.register()
    await fleet.reconcile()
    assert len(fleet.runtime.launched) == 40
    await fleet.register()
    await fleet.reconcile()
    assert len(fleet.runtime.launched) == 45
    await fleet.register()
    await fleet.heartbeat()
    await fleet.reconcile()
    status = await fleet.agent_status("many")
    assert (status["instances"], status["readyReplicas"]) == (45, 45)
