"""run, result, cancel, steer and events from the user's side: references, input, wording."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_wait_says_why_once_and_gives_up_at_the_wait_timeout(
    cli: Cli, scope: Scope, agent: str
) -> None:
    tenant, project = scope
    done = cli("run", "a", "hi", "-t", tenant, "-p", project, "--wait", "--wait-timeout", "0s")
    assert done.exit_code == 1
    name = done.stderr.split()[0].removeprefix("task/")
    assert done.stderr.splitlines()[0] == f"task/{name} submitted"
    waiting = [line for line in done.stderr.splitlines() if line.startswith("waiting:")]
    assert waiting == [
        "waiting: agent 'a' has no ready instance: phase Stopped "
        f"(start it with `clawfleet agent wake a -t {tenant} -p {project}`)"
    ]
    scope_flags = f"-t {tenant} -p {project}"
    assert (
        f"error: task/{name} still pending after 0s; it keeps running: cancel it with "
        f"`clawfleet cancel {name} {scope_flags}`, or get its result later with "
        f"`clawfleet result {name} {scope_flags}`"
    ) in done.stderr
    state = cli("get", f"task/{name}", "-o", "json")
    assert json.loads(state.stdout)["status"]["state"] == "pending"


@pytest.mark.parametrize("value", ["soon", "5x", ""])
def test_a_bad_wait_timeout_is_a_usage_error(cli: Cli, value: str) -> None:
    done = cli("run", "a", "hi", "--wait", "--wait-timeout", value)
    assert done.exit_code == 2
    assert "--wait-timeout: invalid duration" in done.stderr


def test_wait_timeout_needs_wait(cli: Cli) -> None:
    done = cli("run", "a", "hi", "--wait-timeout", "30s")
    assert done.exit_code == 2
    assert "--wait-timeout goes with --wait or --follow" in done.stderr


def test_run_data_from_a_file_and_from_stdin(
    cli: Cli, scope: Scope, agent: str, tmp_path: Path
) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("files: [a.py, b.py]\ndepth: 2\n")
    tenant, project = scope
    done = cli("run", "a", "review", "-t", tenant, "-p", project, "--data", str(data), "-o", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["spec"]["data"] == {"files": ["a.py", "b.py"], "depth": 2}
    done = cli(
        "run", "a", "review", "-t", tenant, "-p", project, "--data", "-", "-o", "json",
        input='{"ticket": 42}',
    )  # fmt: skip
    assert json.loads(done.stdout)["spec"]["data"] == {"ticket": 42}


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "not a list"), ("", "not an empty document"), ("a: [", "invalid YAML")],
)
def test_run_data_must_be_a_mapping(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    data = tmp_path / "data.yaml"
    data.write_text(text)
    done = cli("run", "a", "x", "--data", str(data))
    assert done.exit_code == 1
    assert message in done.stderr


def test_prompt_and_data_cannot_both_come_from_stdin(cli: Cli) -> None:
    done = cli("run", "a", "-", "--data", "-", input="x")
    assert done.exit_code == 2


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
    done = cli("result", "review-1", "-t", tenant, "-p", project)
    assert done.exit_code == 1
    assert "task review-1 is still pending" in done.stderr
    for ref in ("review-1", "task/review-1"):
        assert (
            "task review-1 is still pending"
            in cli("result", ref, "-t", tenant, "-p", project).stderr
        )
    assert (
        cli("cancel", "review-1", "-t", tenant, "-p", project).stdout == "task/review-1 cancelled\n"
    )


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
    assert json.loads(cli("result", f"run/{run}", "-o", "json").stdout)["kind"] == "Run"
    steered = cli("steer", run, "too late")
    assert steered.exit_code == 1
    assert f"run {run} has already succeeded; only a running task can be steered" in (
        steered.stderr
    )


def test_an_unknown_reference_names_both_kinds(cli: Cli) -> None:
    done = cli("result", "nothing-here")
    assert done.exit_code == 1
    assert "no task or run 'nothing-here'" in done.stderr
    assert cli("result", "agent/x").exit_code == 2


def test_the_result_of_a_cancelled_task_says_it_once(cli: Cli, scope: Scope, agent: str) -> None:
    name = _submit(cli, scope)
    assert cli("cancel", f"task/{name}").exit_code == 0
    done = cli("result", name)
    assert done.exit_code == 1
    assert f"error: task {name} was cancelled by admin\n" == done.stderr
    assert "cancelled: cancelled" not in done.stderr


@pytest.mark.parametrize("args", [["get", "agents", "-l", "a=,"], ["run", "selector=a=,", "x"]])
def test_a_bad_selector_is_reported_once(cli: Cli, args: list[str]) -> None:
    done = cli(*args)
    assert done.exit_code == 1
    assert done.stderr == "error: invalid label selector 'a=,': empty term (stray comma?)\n"


def test_an_error_message_with_brackets_is_printed_as_written(cli: Cli) -> None:
    done = cli("get", "[oops]")
    assert done.exit_code == 2
    assert "unknown kind '[oops]'" in done.stderr  # not taken for rich markup and dropped
