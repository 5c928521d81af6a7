"""What a 401 tells the user to do: sign in, set a token, or point at the right data dir."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli


def test_no_token_says_login_and_names_the_data_dir_it_looked_in(cli: Cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-the-servers-data-dir"
    done = cli("get", "agents", CLAWFLEET_DATA_DIR=str(elsewhere))
    assert done.exit_code == 1
    assert "clawfleet login -u NAME" in done.stderr
    assert f"no admin token in {elsewhere / 'admin-token'}" in done.stderr
    assert "CLAWFLEET_DATA_DIR" in done.stderr


def test_a_stale_admin_token_names_its_file(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other-data-dir"
    other.mkdir()
    (other / "admin-token").write_text("cf_not_a_valid_token\n")
    done = cli("get", "agents", CLAWFLEET_DATA_DIR=str(other))
    assert done.exit_code == 1
    assert f"the admin token in {other / 'admin-token'} is not valid for {cli.live.url}" in (
        done.stderr
    )


def test_a_refused_token_names_where_it_came_from(cli: Cli) -> None:
    done = cli("get", "agents", CLAWFLEET_TOKEN="cf_wrong")
    assert done.exit_code == 1
    assert "invalid token (the token from CLAWFLEET_TOKEN)" in done.stderr
    assert "clawfleet login" in done.stderr


def test_a_wrong_password_is_not_mistaken_for_a_missing_token(cli: Cli) -> None:
    done = cli("login", "-u", "nobody", "--password-stdin", input="not the password\n")
    assert done.exit_code == 1
    assert "invalid user name or password" in done.stderr
    assert "no token" not in done.stderr


def test_a_streamed_answer_that_fails_reads_as_any_other_error(
    cli: Cli, scope: tuple[str, str]
) -> None:
    tenant, project = scope
    done = cli("logs", "instance/nope", "-t", tenant, "-p", project)
    assert done.exit_code == 1
    assert done.stderr.count("error:") == 1
    assert "instance 'nope'" in done.stderr and "not found" in done.stderr
