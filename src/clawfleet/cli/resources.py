"""apply, get, describe and delete: the resource commands, all through the HTTP client."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from clawfleet.cli.common import (
    OutputOpt,
    ProjectOpt,
    TenantOpt,
    check_output,
    err,
    fail,
    handle_errors,
    make_client,
    print_error,
    stdout_write,
)
from clawfleet.cli.manifests import load_manifests
from clawfleet.cli.output import dump_json, dump_yaml, print_items
from clawfleet.client import ApiError
from clawfleet.domain.kinds import KindInfo, find_kind, kind_names

FileOpt = Annotated[
    list[str],
    typer.Option("--filename", "-f", help="A file, a directory of .yaml/.json files, or '-'."),
]


def _kind(name: str) -> KindInfo:
    info = find_kind(name)
    if info is None:
        fail(f"unknown kind {name!r}; known kinds: {', '.join(kind_names())}", code=2)
    return info


def _kind_and_name(kind: str, name: str | None) -> tuple[KindInfo, str | None]:
    if "/" in kind:
        if name:
            fail("give either KIND NAME or KIND/NAME, not both", code=2)
        kind, name = kind.split("/", 1)
    return _kind(kind), name


@handle_errors
def apply(
    filename: FileOpt,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Output format: name, json or yaml.")
    ] = "name",
) -> None:
    """Create or update every resource in the given manifests (idempotent)."""
    check_output(output, ("name", "json", "yaml"))
    if not filename:
        fail("say what to apply: clawfleet apply -f FILE|DIR|-", code=2)
    manifests = load_manifests(filename)
    failures = 0
    results: list[dict[str, Any]] = []
    with make_client(tenant, project) as client:
        for manifest in manifests:
            try:
                result, obj = client.apply(manifest.doc)
            except ApiError as exc:
                failures += 1
                print_error(exc, prefix=f"{manifest.ref} ({manifest.source}): ")
                if exc.status in (401, 403):
                    break
                continue
            results.append({"result": result, "object": obj})
            if output == "name":
                stdout_write(f"{manifest.ref} {result}\n")
    if output == "json":
        stdout_write(dump_json(results))
    elif output == "yaml":
        stdout_write(dump_yaml(results))
    if failures:
        raise typer.Exit(1)


@handle_errors
def get(
    kind: Annotated[str, typer.Argument(help="Kind (e.g. agents), KIND/NAME, or kinds a,b.")],
    name: Annotated[str | None, typer.Argument(help="Name of one resource.")] = None,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. 'team=a,tier!=x'.")
    ] = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", "-A", help="Everything you may see, in all tenants.")
    ] = False,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="All projects of the tenant.")
    ] = False,
    output: OutputOpt = "table",
) -> None:
    """List resources, or show one."""
    check_output(output)
    kinds = [_kind_and_name(part, name) for part in kind.split(",")]
    with make_client(tenant, project) as client:
        for index, (info, one) in enumerate(kinds):
            if one:
                items = [client.get(info.plural, one)]
            else:
                items = list(
                    client.list(
                        info.plural,
                        selector=selector,
                        all_tenants=all_tenants,
                        all_projects=all_projects,
                    )
                )
            if not items and output in ("table", "wide"):
                err.print(f"No {info.plural} found.")
                continue
            if index and output in ("table", "wide"):
                stdout_write("\n")
            print_items(info.kind, items, output, single=bool(one))


@handle_errors
def describe(
    kind: Annotated[str, typer.Argument(help="Kind, or KIND/NAME.")],
    name: Annotated[str | None, typer.Argument()] = None,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Show one resource in detail."""
    info, one = _kind_and_name(kind, name)
    if not one:
        fail("describe needs a name: clawfleet describe KIND NAME", code=2)
    with make_client(tenant, project) as client:
        item = client.get(info.plural, one)
        events = item.pop("events", None)
        if info.kind == "Agent":
            events = client.get_path(f"/agents/{one}/events")["items"]
    meta = item["metadata"]
    rows = [("Kind", item["kind"]), ("Name", meta["name"])]
    rows += [(k.title(), meta[k]) for k in ("tenant", "project") if k in meta]
    labels = ", ".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items()))
    labels = labels or "<none>"
    rows += [("Labels", labels), ("UID", meta["uid"])]
    rows += [
        (title, meta[key])
        for title, key in (
            ("Generation", "generation"),
            ("Resource version", "resourceVersion"),
            ("Created", "createdAt"),
            ("Updated", "updatedAt"),
        )
        if meta.get(key) is not None
    ]
    width = max(len(k) for k, _ in rows) + 2
    text = "".join(f"{k + ':':<{width}}{v}\n" for k, v in rows)
    for section in ("annotations", "spec", "status"):
        body = meta.get(section) if section == "annotations" else item.get(section)
        if body:
            indented = "".join(f"  {line}\n" for line in dump_yaml(body).splitlines())
            text += f"{section.title()}:\n{indented}"
    if events:
        text += "Events:\n" + "".join(
            f"  {e['time']}  {e['type']:<7}  {e['reason']:<16}  {e['message']}\n"
            for e in events[-20:]
        )
    stdout_write(text)


@handle_errors
def delete(
    kind: Annotated[str | None, typer.Argument(help="Kind, or KIND/NAME.")] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    filename: FileOpt = [],  # noqa: B006 - typer needs a literal default
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Treat missing resources as deleted.")
    ] = False,
) -> None:
    """Delete a resource by name, or every resource in the given manifests (children first)."""
    targets: list[tuple[str, KindInfo, str, dict[str, str | None]]] = []
    if filename:
        if kind:
            fail("give either KIND NAME or -f FILE, not both", code=2)
        for manifest in reversed(load_manifests(filename)):
            meta = manifest.doc.get("metadata") or {}
            scope = {"tenant": meta.get("tenant"), "project": meta.get("project")}
            targets.append((manifest.ref, _kind(manifest.kind), manifest.name, scope))
    else:
        if not kind:
            fail("say what to delete: clawfleet delete KIND NAME, or -f FILE", code=2)
        info, one = _kind_and_name(kind, name)
        if not one:
            fail("delete needs a name: clawfleet delete KIND NAME", code=2)
        targets.append((f"{info.kind.lower()}/{one}", info, one, {}))
    failures = 0
    with make_client(tenant, project) as client:
        for ref, info, one, scope in targets:
            try:
                client.delete(
                    info.plural, one, tenant=scope.get("tenant"), project=scope.get("project")
                )
            except ApiError as exc:
                if exc.status == 404 and ignore_not_found:
                    continue
                failures += 1
                print_error(exc, prefix=f"{ref}: ")
                continue
            stdout_write(f"{ref} deleted\n")
    if failures:
        raise typer.Exit(1)
