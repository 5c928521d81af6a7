"""user, serviceaccount and audit listings read as tables with a header row."""

from __future__ import annotations

from tests.cli.conftest import Cli

Scope = tuple[str, str]
PASSWORD = "a long enough password\n"


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_user_list_has_a_header(cli: Cli) -> None:
    assert cli("user", "create", "bob", "--password-stdin", input=PASSWORD).exit_code == 0
    assert cli("user", "disable", "bob").exit_code == 0
    rows = _rows(cli("user", "list").stdout)
    assert rows[0] == ["NAME", "STATE"]
    assert ["bob", "disabled"] in rows[1:]


def test_serviceaccount_list_has_a_header(cli: Cli, scope: Scope) -> None:
    tenant, _ = scope
    assert cli("serviceaccount", "create", "ci", "-t", tenant).exit_code == 0
    key = cli("serviceaccount", "key", "ci", "-t", tenant)
    assert key.exit_code == 0 and key.stdout.startswith("cf_")
    done = cli("serviceaccount", "list", "-t", tenant)
    assert _rows(done.stdout) == [["TENANT", "NAME", "ACTIVE", "KEYS"], [tenant, "ci", "1"]]


def test_audit_has_a_header(cli: Cli, scope: Scope) -> None:
    tenant, _ = scope
    rows = _rows(cli("audit", "-t", tenant, "--kind", "Project").stdout)
    assert rows[0] == ["TIME", "OUTCOME", "PRINCIPAL", "VERB", "RESOURCE", "WHERE", "FIELDS"]
    assert rows[1][1:6] == ["allowed", "admin", "create", "project/web", f"{tenant}/web"]
