"""The agent controller, as tables of what a user does and what the fleet then looks like."""

from __future__ import annotations

from tests.controllers.conftest import Fleet
from tests.factories import secret


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
    fleet.clock.advance(5)
    await fleet.reconcile(2)
    assert (await fleet.reasons(name)).count("ConfigError") == 2
    assert len(await fleet.instances()) == 1
    await fleet.apply(secret("gh", token="t0k3n-value-1234"))
    fleet.clock.advance(5)
    [instance] = await fleet.up()
    assert instance["metadata"]["name"] == name
    assert instance["status"]["phase"] == "Running"


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


async def test_a_runner_receives_the_revision_the_controller_compares(fleet: Fleet) -> None:
    await fleet.agent("zed", env={"MODE": "fast"})
    await fleet.reconcile()
    [instance] = await fleet.instances()
    answer = await fleet.state.dispatcher.protocol.register(instance["metadata"]["uid"])
    assert answer["revision"] == instance["spec"]["revision"]
    assert len(answer["revision"]) == 64
    assert answer["bundle"]["command"] == ["sh", "-c", "cat"]
    assert answer["bundle"]["envNames"] == ["MODE"]
