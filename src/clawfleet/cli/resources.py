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
from clawfleet.cli.output import dump_json, dump_yaml, print_items, print_list
from clawfleet.cli.selection import Target, find, nothing_found, parse_targets
from clawfleet.client import ApiError
from clawfleet.domain.kinds import KindInfo

FileOpt = Annotated[
    list[str],
    typer.Option(
        "--filename",
        "-f",
        metavar="PATH",
        help="A file, a directory of .yaml/.json files, or '-' (stdin); may repeat.",
    ),
]


TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TARGET",
        help="KIND [NAME...] (agents; agent shell staged), several kinds (agents,secrets), or "
        "KIND/NAME... as -o name prints them.",
    ),
]
SelectorOpt = Annotated[
    str | None,
    typer.Option(
        "--selector", "-l", metavar="SELECTOR", help="Label selector, e.g. 'team=a,tier!=x'."
    ),
]


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
    targets: TargetsArg = None,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    selector: SelectorOpt = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", "-A", help="Everything you may see, in all tenants.")
    ] = False,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", help="All projects of the tenant.")
    ] = False,
    output: OutputOpt = "table",
) -> None:
    """List resources, or show some."""
    check_output(output)
    wanted = parse_targets(targets or [], "get")
    sections: list[tuple[KindInfo, list[dict[str, Any]]]] = []
    failures = 0
    with make_client(tenant, project) as client:
        for target in wanted:
            if target.name is None:
                found = list(
                    client.list(
                        target.info.plural,
                        selector=selector,
                        all_tenants=all_tenants,
                        all_projects=all_projects,
                    )
                )
                sections.append((target.info, found))
                if not found and output in ("table", "wide"):
                    err.print(
                        nothing_found(
                            client, target.info, selector=selector,
                            all_tenants=all_tenants, all_projects=all_projects,
                        ),
                        highlight=False, markup=False,
                    )  # fmt: skip
                continue
            try:
                item = client.get(target.info.plural, target.name)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                failures += 1
                print_error(exc, prefix=f"{target.ref}: ")
                continue
            if sections and sections[-1][0] == target.info and wanted[0].name is not None:
                sections[-1][1].append(item)
            else:
                sections.append((target.info, [item]))
    single = len(wanted) == 1 and wanted[0].name is not None
    _print_sections(sections, output, single=single)
    if failures:
        raise typer.Exit(1)


def _print_sections(
    sections: list[tuple[KindInfo, list[dict[str, Any]]]], output: str, *, single: bool
) -> None:
    """One document for JSON and YAML (an item, a KindList, or a List of several kinds);
    one table per kind, a blank line apart."""
    if output in ("json", "yaml") and (single or len(sections) != 1):
        items = [item for _, found in sections for item in found]
        if single and items:
            print_items(sections[0][0].kind, items, output, single=True)
        elif not single:
            print_list(items, output)
        return
    shown = 0
    for info, found in sections:
        if not found and output in ("table", "wide"):
            continue
        if shown and output in ("table", "wide"):
            stdout_write("\n")
        print_items(info.kind, found, output, single=False)
        shown += 1


@handle_errors
def describe(
    kind: Annotated[
        str, typer.Argument(metavar="KIND[/NAME]", help="A kind (e.g. agent), or KIND/NAME.")
    ],
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="The resource's name.")
    ] = None,
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Show one resource in detail."""
    wanted = parse_targets([kind] + ([name] if name else []), "describe")
    if len(wanted) != 1 or wanted[0].name is None:
        fail("describe takes one resource: clawfleet describe KIND NAME", code=2)
    info, one = wanted[0].info, wanted[0].name
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
    targets: TargetsArg = None,
    filename: FileOpt = [],  # noqa: B006 - typer needs a literal default
    tenant: TenantOpt = None,
    project: ProjectOpt = None,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector",
            "-l",
            metavar="SELECTOR",
            help="Delete every resource of the kind with matching labels, e.g. 'team=web'.",
        ),
    ] = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Treat missing resources as deleted.")
    ] = False,
) -> None:
    """Delete resources by name, by label selector, or every resource in the given manifests
    (children first)."""
    deletions: list[tuple[str, KindInfo, str, dict[str, str | None]]] = []
    with make_client(tenant, project) as client:
        if filename:
            if targets or selector:
                fail("give either KIND NAME..., -l SELECTOR or -f FILE, not several", code=2)
            for manifest in reversed(load_manifests(filename)):
                meta = manifest.doc.get("metadata") or {}
                scope = {"tenant": meta.get("tenant"), "project": meta.get("project")}
                deletions.append((manifest.ref, find(manifest.kind), manifest.name, scope))
        else:
            for target in _delete_targets(targets or [], selector):
                if target.name is not None:
                    deletions.append((target.ref, target.info, target.name, {}))
                    continue
                found = [
                    i["metadata"]["name"]
                    for i in client.list(target.info.plural, selector=selector)
                ]
                if not found:
                    err.print(nothing_found(client, target.info, selector=selector), markup=False)
                for one in found:
                    deletions.append((f"{target.info.kind.lower()}/{one}", target.info, one, {}))
        failures = 0
        for ref, info, one, scope in deletions:
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


def _delete_targets(args: list[str], selector: str | None) -> list[Target]:
    if not args:
        fail(
            "say what to delete: clawfleet delete KIND NAME..., KIND -l SELECTOR or -f FILE", code=2
        )
    targets = parse_targets(args, "delete")
    if selector is None and any(t.name is None for t in targets):
        fail(
            "delete needs names or a selector: clawfleet delete KIND NAME... or KIND -l SELECTOR",
            code=2,
        )
    if selector is not None and any(t.name is not None for t in targets):
        fail("give either names or -l SELECTOR, not both", code=2)
    return targets
