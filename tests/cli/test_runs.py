"""run, result, cancel, steer and events from the user's side: references."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Cli

Scope = tuple[str, str]


@pytest.fixture
def agent(cli: Cli, scope: Scope) -> str:
    """A Stopped agent in this test's project: tasks for it stay pending."""
    tenant, project = scope
    manifest = (
        f"kind: Agent\nmetadata: {{name: a, tenant: {tenant}, project: {project}}}\n"
        "spec: {adapter: command, command: [cat], config: {protocol: text}, state: Stopped}\n"
    )
    assert cli("apply", "-f", "-", input=manifest).exit_code == 0
    return "a"


def _submit(cli: Cli, scope: Scope, *args: str) -> str:
    done = cli("run", "a", "hi", "-t", scope[0], "-p", scope[1], *args)
    assert done.exit_code == 0, done.output
    return done.stdout.strip().removeprefix("task/")


def test_a_task_name_starting_with_r_is_a_task_not_a_run(
    cli: Cli, scope: Scope, agent: str
) -> None:
    """B9: `result review-1` was looked up as a run."""
    tenant, project = scope
    task = {
        "kind": "Task",
        "metadata": {"name": "review-1", "tenant": tenant, "project": project},
        "spec": {"agent": "a", "prompt": "hi"},
    }
    submitted = cli.api("POST", "/tasks", task)
    assert submitted["metadata"]["name"] == "review-1"
    done = cli("result", "review-1")
    assert done.exit_code == 1
    assert "task review-1 is still pending" in done.stderr
    for ref in ("review-1", "task/review-1"):
        assert "task review-1 is still pending" in cli("result", ref).stderr
    assert cli("cancel", "review-1").stdout == "task/review-1 cancelled\n"


def test_runs_by_id_and_tasks_by_reference(cli: Cli, scope: Scope) -> None:
    tenant, project = scope
    manifest = (
        f"kind: Agent\nmetadata: {{name: a, tenant: {tenant}, project: {project}}}\n"
        "spec: {adapter: command, command: [cat]}\n"
    )
    assert cli("apply", "-f", "-", input=manifest).exit_code == 0
    name = _submit(cli, scope)
    run = cli.live.run_next_task(tenant, project, "a", output="hello")
    for ref in (name, f"task/{name}", run, f"run/{run}"):
        done = cli("result", ref)
        assert (done.exit_code, done.stdout) == (0, "hello\n"), ref
    events = cli("events", run, "-o", "json")
    assert events.exit_code == 0
    assert [json.loads(line)["type"] for line in events.stdout.splitlines()][-1] == "status"
    steered = cli("steer", run, "too late")
    assert steered.exit_code == 1
    assert "only a running task can be steered" in steered.stderr


def test_an_unknown_reference_names_both_kinds(cli: Cli) -> None:
    done = cli("result", "nothing-here")
    assert done.exit_code == 1
    assert "no task or run 'nothing-here'" in done.stderr
    assert cli("result", "agent/x").exit_code == 2
