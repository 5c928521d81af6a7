"""run, events, logs, result, cancel and steer: getting work done and watching it."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from clawfleet.cli.common import (
    EventsOutputOpt,
    ProjectOpt,
    ResultOutputOpt,
    TenantOpt,
    check_output,
    err,
    fail,
    handle_errors,
    make_client,
    stdout_write,
)
from clawfleet.cli.manifests import load_data
from clawfleet.cli.output import dump_json, dump_yaml
from clawfleet.cli.references import fetch, parse_ref, resolve_ref, run_of
from clawfleet.cli.task_waits import (
    TERMINAL,
    TaskWaiter,
    event_line,
    keeps_running,
    run_events,
)

RefArg = Annotated[
    str,
    typer.Argument(
        metavar="REF", help="task/NAME or run/ID (as -o name prints them), or a bare name or id."
    ),
]


def _scope_flags(tenant: str | None, project: str | None) -> str:
    """The -t/-p flags a follow-up command needs, as the user gave them."""
    return "".join(f" {flag} {value}" for flag, value in (("-t", tenant), ("-p", project)) if value)


def _duration(option: str, text: str) -> tuple[float, str]:
    from clawfleet.schemas.base import parse_duration

    try:
        return float(parse_duration(text)), text
    except ValueError as exc:
        fail(f"{option}: {exc}", code=2)


def _result_text(output: Any) -> str:
    if output is None:
        return ""
    text = output if isinstance(output, str) else json.dumps(output, indent=2)
    return text if text.endswith("\n") or not text else text + "\n"


def _ended(what: str, status: dict[str, Any]) -> str:
    """'task t1 failed (agent-exited): exit 1', 'task t2 was cancelled by admin'."""
    state, kind, error = status["state"], status.get("failureKind"), status.get("error")
    if state == "cancelled" and str(error).startswith("cancelled "):
        return f"{what} was {error}"  # 'cancelled by admin' says it all
    verb = {"failed": "failed", "cancelled": "was cancelled"}.get(state, f"is {state}")
    detail = f" ({kind})" if kind and kind != state else ""
    return f"{what} {verb}{detail}" + (f": {error}" if error else "")


@handle_errors
def run(
    agent: Annotated[
        str,
        typer.Argument(
            metavar="AGENT", help="The agent to run on, or selector=EXPR for any matching agent."
        ),
    ],
    prompt: Annotated[
        str, typer.Argument(metavar="PROMPT", help="What to do; '-' reads it from stdin.")
    ],
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait and print the result.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show live progress, then the result.")
    ] = False,
    wait_timeout: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="With --wait/--follow: stop waiting after this long, e.g. 30s or 5m "
            "(the task keeps running). Default: until the task ends.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="A JSON or YAML mapping for the task's spec.data; '-' reads it from stdin.",
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Time limit of each attempt, e.g. 30s or 5m."),
    ] = None,
    priority: Annotated[int, typer.Option(metavar="N", help="Higher runs first.")] = 0,
    max_attempts: Annotated[int, typer.Option(metavar="N", help="Attempts before giving up.")] = 3,
    idempotency_key: Annotated[
        str | None, typer.Option(metavar="KEY", help="Submit at most once per key.")
    ] = None,
    output: ResultOutputOpt = "name",
) -> None:
    """Send a task to an agent; with --wait or --follow, print its result."""
    check_output(output, ("name", "json", "yaml"))
    if wait_timeout is not None and not (wait or follow):
        fail("--wait-timeout goes with --wait or --follow", code=2)
    within = _duration("--wait-timeout", wait_timeout) if wait_timeout is not None else None
    if prompt == "-" and data == "-":
        fail("only one of PROMPT and --data can be read from stdin ('-')", code=2)
    spec: dict[str, Any] = {
        "prompt": sys.stdin.read() if prompt == "-" else prompt,
        "priority": priority,
        "retry": {"maxAttempts": max_attempts},
    }
    if data is not None:
        spec["data"] = load_data(data)
    if agent.startswith("selector="):
        spec["selector"] = agent.removeprefix("selector=")
    else:
        spec["agent"] = agent
    if timeout:
        spec["timeout"] = timeout
    if idempotency_key:
        spec["idempotencyKey"] = idempotency_key
    with make_client(tenant, project) as client:
        task = client.submit_task({"kind": "Task", "spec": spec})
        name = task["metadata"]["name"]
        if wait or follow:
            scope = _scope_flags(tenant, project)
            with keeps_running(name, scope):
                err.print(f"task/{name} submitted", highlight=False)
                waiter = TaskWaiter(client, name, follow=follow, within=within, scope=scope)
                task = waiter.wait()
    _print_task(task, output, final=wait or follow)


def _print_task(task: dict[str, Any], output: str, *, final: bool) -> None:
    if output == "json":
        stdout_write(dump_json(task))
        return
    if output == "yaml":
        stdout_write(dump_yaml(task))
        return
    if not final:
        stdout_write(f"task/{task['metadata']['name']}\n")
        return
    status = task["status"]
    if status["state"] != "done":
        fail(_ended(f"task {task['metadata']['name']}", status))
    stdout_write(_result_text((status.get("result") or {}).get("output")))


@handle_errors
def events(
    ref: RefArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new events live.")] = False,
    after: Annotated[
        int, typer.Option(metavar="SEQ", help="Only events after this sequence number.")
    ] = 0,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    output: EventsOutputOpt = "table",
) -> None:
    """Show a run's ordered events (a task's: its current or latest run)."""
    check_output(output, ("table", "json"))
    with make_client(tenant, project) as client:
        run_id, task = run_of(client, resolve_ref(client, ref))
        if follow:
            with keeps_running(task, _scope_flags(tenant, project)):
                for event in run_events(client, run_id, after):
                    _print_event(event, output)
            return
        body = client.get_path(f"/runs/{run_id}/events", after=after, limit=10_000)
        for event in body["events"]:
            _print_event(event, output)


def _print_event(event: dict[str, Any], output: str) -> None:
    if output == "json":
        stdout_write(json.dumps(event) + "\n")
        return
    data = json.dumps(event.get("data") or {}, ensure_ascii=False)
    stdout_write(f"{event['seq']:>5}  {event.get('time', '')}  {event['type']:<10} {data}\n")


@handle_errors
def logs(
    ref: Annotated[str, typer.Argument(metavar="REF", help="instance/NAME, run/ID or task/NAME.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    tail: Annotated[int | None, typer.Option(metavar="N", help="Only the last N lines.")] = None,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Print an instance's output, or a run's messages and log lines."""
    kind, _, name = ref.partition("/")
    if not name:
        fail("say which: clawfleet logs instance/NAME or clawfleet logs run/ID", code=2)
    with make_client(tenant, project) as client:
        if kind in ("instance", "instances", "inst"):
            params: dict[str, Any] = {"follow": str(follow).lower()}
            if tail:
                params["tail"] = tail
            for chunk in client.stream_text(f"/instances/{name}/logs", **params):
                stdout_write(chunk)
            return
        if kind not in ("run", "runs", "task", "tasks"):
            fail(f"unknown log source {kind!r}; use instance/NAME or run/ID", code=2)
        target = parse_ref(ref)
        assert target is not None  # it has a kind
        run_id, task = run_of(client, target)
        if follow:
            with keeps_running(task, _scope_flags(tenant, project)):
                for event in run_events(client, run_id):
                    if event.get("type") in ("message", "log"):
                        stdout_write((event_line(event) or "") + "\n")
            return
        events = client.get_path(f"/runs/{run_id}/events", limit=10_000)["events"]
    lines = [event_line(e) or "" for e in events if e.get("type") in ("message", "log")]
    if tail:
        lines = lines[-tail:]
    stdout_write("".join(line + "\n" for line in lines))


@handle_errors
def result(
    ref: RefArg,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    output: ResultOutputOpt = "name",
) -> None:
    """Print the result of a task (or of one run)."""
    check_output(output, ("name", "json", "yaml"))
    with make_client(tenant, project) as client:
        target = resolve_ref(client, ref)
        doc = fetch(client, target)
    if target.kind == "run":
        _print_run(doc, output)
        return
    state = doc["status"]["state"]
    if output == "name" and state not in TERMINAL:
        fail(
            f"task {doc['metadata']['name']} is still {state}; try again later, or wait for it "
            "with `clawfleet run ... --wait`"
        )
    _print_task(doc, output, final=True)


def _print_run(run: dict[str, Any], output: str) -> None:
    if output in ("json", "yaml"):
        stdout_write(dump_json(run) if output == "json" else dump_yaml(run))
        return
    status, what = run["status"], f"run {run['metadata']['name']}"
    if status["state"] == "running":
        fail(f"{what} is still running; try again later")
    if status["state"] != "succeeded":
        fail(_ended(what, status))
    stdout_write(_result_text((status.get("result") or {}).get("output")))


@handle_errors
def cancel(ref: RefArg, tenant: TenantOpt = None, project: ProjectOpt = None) -> None:
    """Cancel a task: a queued one at once, a running one within seconds."""
    with make_client(tenant, project) as client:
        task = client.post(f"{resolve_ref(client, ref).path}/cancel")
    state = task["status"]["state"]
    cancelling = task["status"].get("cancelRequested") and state != "cancelled"
    stdout_write(
        f"task/{task['metadata']['name']} {state}{' (cancelling)' if cancelling else ''}\n"
    )


@handle_errors
def steer(
    ref: RefArg,
    message: Annotated[str, typer.Argument(metavar="MESSAGE", help="What to tell the agent.")],
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Send a message into a running task's agent program."""
    with make_client(tenant, project) as client:
        answer = client.post(f"{resolve_ref(client, ref).path}/steer", {"message": message})
    stdout_write(f"steer sent to run/{answer['run']}\n")
