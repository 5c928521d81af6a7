"""login, logout, whoami, user, serviceaccount and audit: identity and accountability."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from clawfleet.cli.common import (
    GLOBALS,
    DocOutputOpt,
    TenantOpt,
    check_output,
    err,
    handle_errors,
    make_client,
    stdout_write,
)
from clawfleet.cli.output import dump_json, dump_yaml, print_rows
from clawfleet.client import ClawfleetClient, load_client_config
from clawfleet.client.config import config_file_path, forget_session, save_session

user_app = typer.Typer(help="Users (cluster admins).", no_args_is_help=True)
sa_app = typer.Typer(help="Service accounts and their API keys.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(metavar="NAME", help="The user name.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _password(from_stdin: bool, *, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


def _emit(value: Any, output: str) -> bool:
    """Print as JSON or YAML when asked; False when the caller prints its own table."""
    if output == "json":
        stdout_write(dump_json(value))
    elif output == "yaml":
        stdout_write(dump_yaml(value))
    else:
        return False
    return True


@handle_errors
def login(
    username: Annotated[
        str,
        typer.Option("--username", "-u", metavar="NAME", prompt=True, help="Your user name."),
    ],
    password_stdin: PasswordStdin = False,
) -> None:
    """Sign in; the session is kept in the client config and renewed automatically."""
    # No token goes with a sign-in: not the local admin token, not an old session.
    config = replace(load_client_config(os.environ, server=GLOBALS.server), token=None)
    password = _password(password_stdin)
    with ClawfleetClient(config) as client:
        session = client.post("/auth/login", {"username": username, "password": password})
    path = config_file_path(os.environ)
    save_session(path, config.server, session["accessToken"], session["refreshToken"])
    err.print(f"Signed in to {config.server} as {session['user']} (session saved in {path}).")


@handle_errors
def logout() -> None:
    """End the session kept in the client config."""
    config = load_client_config(os.environ, server=GLOBALS.server)
    if config.refresh_token:
        with ClawfleetClient(config) as client:
            client.post("/auth/logout", {"refreshToken": config.refresh_token})
    forget_session(config_file_path(os.environ))
    err.print("Signed out.")


@handle_errors
def whoami(output: DocOutputOpt = "table") -> None:
    """Who the server thinks you are, and your roles."""
    check_output(output, ("table", "json", "yaml"))
    with make_client() as client:
        me = client.whoami()
    if _emit(me, output):
        return
    lines = [
        f"name:    {me['name']}",
        f"kind:    {me['kind']}",
        f"tenant:  {me.get('tenant') or '-'}",
    ]
    bindings = me.get("bindings") or []
    if bindings:
        lines.append("roles:")
        lines += [
            f"  {b['role']} in tenant {b['tenant']}"
            + (f", project {b['project']}" if b["project"] else "")
            for b in bindings
        ]
    elif me["kind"] == "admin":
        lines.append("roles:   admin (everything)")
    else:
        lines.append("roles:   none (ask a tenant admin for a RoleBinding)")
    stdout_write("\n".join(lines) + "\n")


@user_app.command("create")
@handle_errors
def user_create(
    name: UserArg,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (give them roles with a RoleBinding)."""
    password = _password(password_stdin, confirm=not password_stdin)
    with make_client() as client:
        client.post("/users", {"name": name, "password": password})
    stdout_write(f"user/{name} created\n")


@user_app.command("list")
@handle_errors
def user_list(output: DocOutputOpt = "table") -> None:
    """List users."""
    check_output(output, ("table", "json", "yaml"))
    with make_client() as client:
        items = client.get_path("/users")["items"]
    if _emit(items, output):
        return
    if not items:
        err.print("No users.")
        return
    print_rows(
        ["NAME", "STATE"], [[u["name"], "disabled" if u["disabled"] else "active"] for u in items]
    )


@user_app.command("disable")
@handle_errors
def user_disable(name: UserArg) -> None:
    """Disable a user and end their sessions."""
    with make_client() as client:
        client.post(f"/users/{name}/disable")
    stdout_write(f"user/{name} disabled\n")


@user_app.command("enable")
@handle_errors
def user_enable(name: UserArg) -> None:
    """Enable a user again."""
    with make_client() as client:
        client.post(f"/users/{name}/enable")
    stdout_write(f"user/{name} enabled\n")


@sa_app.command("create")
@handle_errors
def sa_create(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The service account's name, unique in its tenant (e.g. ci)."
        ),
    ],
    tenant: TenantOpt = None,
    description: Annotated[str, typer.Option(metavar="TEXT", help="What it is for.")] = "",
) -> None:
    """Create a service account in a tenant."""
    with make_client(tenant) as client:
        client.post("/serviceaccounts", {"name": name, "description": description})
    stdout_write(f"serviceaccount/{name} created\n")


@sa_app.command("list")
@handle_errors
def sa_list(tenant: TenantOpt = None, output: DocOutputOpt = "table") -> None:
    """List service accounts and their keys (never the keys' values)."""
    check_output(output, ("table", "json", "yaml"))
    with make_client(tenant) as client:
        items = client.get_path("/serviceaccounts")["items"]
    if _emit(items, output):
        return
    if not items:
        err.print("No service accounts.")
        return
    rows = [
        [sa["tenant"], sa["name"], str(sum(1 for k in sa["keys"] if not k["revoked"]))]
        for sa in items
    ]
    print_rows(["TENANT", "NAME", "ACTIVE KEYS"], rows)


@sa_app.command("key")
@handle_errors
def sa_key(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The service account.")],
    tenant: TenantOpt = None,
    expires_in: Annotated[
        int | None, typer.Option(metavar="SECONDS", help="Seconds until the key expires.")
    ] = None,
    revoke: Annotated[
        str | None, typer.Option(metavar="KEY_ID", help="Revoke the key with this id instead.")
    ] = None,
) -> None:
    """Mint an API key for a service account (printed once), or revoke one."""
    with make_client(tenant) as client:
        if revoke:
            client.delete_path(f"/serviceaccounts/{name}/keys/{revoke}")
            stdout_write(f"key {revoke} revoked\n")
            return
        key = client.post(f"/serviceaccounts/{name}/keys", {"expiresInSeconds": expires_in})
    err.print(f"key {key['id']}: store it now, it is not shown again")
    stdout_write(key["key"] + "\n")


@handle_errors
def audit(
    kind: Annotated[
        str | None, typer.Option(metavar="KIND", help="Only this kind, e.g. Agent.")
    ] = None,
    user: Annotated[
        str | None, typer.Option(metavar="PRINCIPAL", help="Only this principal, e.g. user:alice.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Only records since, e.g. 2026-11-21T12:00:00Z."),
    ] = None,
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=1000, help="At most this many records.")
    ] = 100,
    tenant: TenantOpt = None,
    all_tenants: Annotated[
        bool,
        typer.Option("--all-tenants", "-A", help="Records of every tenant you may audit."),
    ] = False,
    output: DocOutputOpt = "table",
) -> None:
    """Who changed what, when and from where, newest first."""
    check_output(output, ("table", "json", "yaml"))
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("kind", kind), ("user", user), ("since", since)):
        if value:
            params[key] = value
    if all_tenants:
        params["allTenants"] = "true"
    with make_client(tenant) as client:
        if tenant:
            params["tenant"] = tenant
        items = client.get_path("/audit", **params)["items"]
    if _emit(items, output):
        return
    if not items:
        err.print("No audit records.")
        return
    rows = [
        [
            e["time"], e["outcome"], e["principal"], e["verb"], f"{e['kind'].lower()}/{e['name']}",
            "/".join(x for x in (e.get("tenant"), e.get("project")) if x) or "-",
            ",".join((e.get("details") or {}).get("fields", [])) or "-",
        ]
        for e in items
    ]  # fmt: skip
    print_rows(["TIME", "OUTCOME", "PRINCIPAL", "VERB", "RESOURCE", "WHERE", "FIELDS"], rows)
