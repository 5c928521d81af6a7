"""instance restart|stop and agent sleep|wake|scale: asking controllers to act."""

from __future__ import annotations

from typing import Annotated

import typer

from clawfleet.cli.common import ProjectOpt, TenantOpt, handle_errors, make_client, stdout_write

instance_app = typer.Typer(help="Act on one instance (replica) of an agent.", no_args_is_help=True)
agent_app = typer.Typer(help="Sleep, wake or scale an agent.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The name (see `clawfleet get ...`).")]


@instance_app.command("restart")
@handle_errors
def restart_instance(name: NameArg, tenant: TenantOpt = None, project: ProjectOpt = None) -> None:
    """Restart an instance in place (its running runs are retried elsewhere)."""
    with make_client(tenant, project) as client:
        client.post(f"/instances/{name}/restart")
    stdout_write(f"instance/{name} restarting\n")


@instance_app.command("stop")
@handle_errors
def stop_instance(name: NameArg, tenant: TenantOpt = None, project: ProjectOpt = None) -> None:
    """Stop an instance after it finishes its runs; the agent starts a replacement if needed."""
    with make_client(tenant, project) as client:
        client.post(f"/instances/{name}/stop")
    stdout_write(f"instance/{name} stopping\n")


@agent_app.command("sleep")
@handle_errors
def sleep_agent(name: NameArg, tenant: TenantOpt = None, project: ProjectOpt = None) -> None:
    """Stop all instances until work arrives (a task wakes the agent)."""
    with make_client(tenant, project) as client:
        client.post(f"/agents/{name}/sleep")
    stdout_write(f"agent/{name} sleeping\n")


@agent_app.command("wake")
@handle_errors
def wake_agent(name: NameArg, tenant: TenantOpt = None, project: ProjectOpt = None) -> None:
    """Run the declared replicas again."""
    with make_client(tenant, project) as client:
        client.post(f"/agents/{name}/wake")
    stdout_write(f"agent/{name} running\n")


@agent_app.command("scale")
@handle_errors
def scale_agent(
    name: NameArg,
    replicas: Annotated[
        int, typer.Argument(metavar="REPLICAS", min=0, max=1000, help="How many instances.")
    ],
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Set the number of replicas."""
    with make_client(tenant, project) as client:
        client.post(f"/agents/{name}/scale", {"replicas": replicas})
    stdout_write(f"agent/{name} scaled to {replicas}\n")
