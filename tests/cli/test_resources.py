"""get, describe and delete as a script uses them: one document per call, -o name fed back,
selectors, and empty listings that say where they looked."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cli.conftest import Cli

Scope = tuple[str, str]


@pytest.fixture
def fleet(cli: Cli, scope: Scope) -> Scope:
    """Agents web-1, web-2 (team=web), api-1 (team=api) and a secret in this test's project."""
    tenant, project = scope
    docs = [
        f"kind: Agent\nmetadata: {{name: {name}, tenant: {tenant}, project: {project}, "
        f"labels: {{team: {team}}}}}\nspec: {{adapter: command, command: [cat], state: Stopped}}\n"
        for name, team in (("web-1", "web"), ("web-2", "web"), ("api-1", "api"))
    ]
    docs.append(
        f"kind: Secret\nmetadata: {{name: s, tenant: {tenant}, project: {project}}}\n"
        "spec: {stringData: {k: value-123456}}\n"
    )
    done = cli("apply", "-f", "-", input="---\n".join(docs))
    assert done.exit_code == 0, done.output
    return scope


def test_several_kinds_as_json_are_one_list_document(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    done = cli("get", "agents,secrets", "-t", tenant, "-p", project, "-o", "json")
    assert done.exit_code == 0
    doc = json.loads(done.stdout)  # one document, not two back to back
    assert (doc["apiVersion"], doc["kind"]) == ("clawfleet.dev/v1", "List")
    assert [i["kind"] for i in doc["items"]] == ["Agent", "Agent", "Agent", "Secret"]
    done = cli("get", "runs,instances", "-t", tenant, "-p", project, "-o", "yaml")
    assert list(yaml.safe_load_all(done.stdout)) == [
        {"apiVersion": "clawfleet.dev/v1", "kind": "List", "items": []}
    ]


def test_one_kind_is_still_its_own_list_and_one_name_its_item(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    listed = json.loads(cli("get", "agents", "-t", tenant, "-p", project, "-o", "json").stdout)
    assert listed["kind"] == "AgentList"
    one = json.loads(cli("get", "agent/web-1", "-t", tenant, "-p", project, "-o", "json").stdout)
    assert (one["kind"], one["metadata"]["name"]) == ("Agent", "web-1")


def test_names_printed_by_get_are_taken_back_by_get_and_delete(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    flags = ["-t", tenant, "-p", project]
    names = cli("get", "agents", "-l", "team=web", *flags, "-o", "name").stdout.split()
    assert names == ["agent/web-1", "agent/web-2"]
    table = cli("get", *names, *flags)
    assert table.exit_code == 0
    assert [line.split()[0] for line in table.stdout.splitlines()] == ["NAME", "web-1", "web-2"]
    both = json.loads(cli("get", *names, "secret/s", *flags, "-o", "json").stdout)
    assert [i["metadata"]["name"] for i in both["items"]] == ["web-1", "web-2", "s"]
    deleted = cli("delete", *names, *flags)
    assert deleted.stdout == "agent/web-1 deleted\nagent/web-2 deleted\n"
    assert cli("get", "agents", *flags, "-o", "name").stdout == "agent/api-1\n"


def test_get_and_delete_take_a_kind_and_several_names(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    flags = ["-t", tenant, "-p", project]
    assert cli("get", "agent", "web-1", "api-1", *flags, "-o", "name").stdout == (
        "agent/web-1\nagent/api-1\n"
    )
    missing = cli("get", "agent/web-1", "agent/nope", *flags, "-o", "name")
    assert missing.exit_code == 1
    assert missing.stdout == "agent/web-1\n"
    assert "agent/nope: " in missing.stderr and "not found" in missing.stderr
    assert cli("delete", "agent", "web-1", "web-2", *flags).exit_code == 0


def test_delete_by_label_selector(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    flags = ["-t", tenant, "-p", project]
    done = cli("delete", "agents", "-l", "team=web", *flags)
    assert done.stdout == "agent/web-1 deleted\nagent/web-2 deleted\n"
    assert cli("get", "agents", *flags, "-o", "name").stdout == "agent/api-1\n"
    again = cli("delete", "agents", "-l", "team=web", *flags)
    assert again.exit_code == 0
    assert again.stderr == (
        f"No agents matching 'team=web' in tenant '{tenant}', project '{project}'.\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["delete", "agents"],
        ["delete", "agent/a", "-l", "x=y"],
        ["delete", "agent/a", "b"],
        ["delete", "agents,secrets", "a"],
        ["get", "agent/"],
    ],
)
def test_unclear_targets_are_usage_errors(cli: Cli, args: list[str]) -> None:
    done = cli(*args)
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith("error: ")


def test_an_empty_listing_says_where_it_looked(cli: Cli, scope: Scope) -> None:
    tenant, project = scope
    done = cli("get", "agents", "-t", tenant, "-p", project)
    assert (done.exit_code, done.stdout) == (0, "")
    assert done.stderr == f"No agents in tenant '{tenant}', project '{project}'.\n"
    assert cli("get", "rolebindings", "-t", tenant).stderr == (
        f"No rolebindings in tenant '{tenant}'.\n"
    )
    assert cli("get", "agents", "-t", tenant, "--all-projects").stderr == (
        f"No agents in tenant '{tenant}' (all projects).\n"
    )


def test_an_empty_listing_says_when_its_project_or_tenant_does_not_exist(
    cli: Cli, scope: Scope
) -> None:
    tenant, _ = scope
    assert cli("get", "agents", "-t", tenant, "-p", "nope").stderr == (
        f"No agents in tenant '{tenant}', project 'nope': there is no project 'nope' in tenant "
        f"'{tenant}' (list them with `clawfleet get projects -t {tenant}`).\n"
    )
    assert cli("get", "secrets", "-t", "nosuch").stderr == (
        "No secrets in tenant 'nosuch', project 'default': there is no tenant 'nosuch' "
        "(list them with `clawfleet get tenants`).\n"
    )


def test_describe_takes_kind_name_or_a_reference(cli: Cli, fleet: Scope) -> None:
    tenant, project = fleet
    for args in (["agent", "web-1"], ["agent/web-1"]):
        done = cli("describe", *args, "-t", tenant, "-p", project)
        assert done.exit_code == 0
        assert "Name:" in done.stdout and "web-1" in done.stdout
    assert cli("describe", "agents").exit_code == 2
