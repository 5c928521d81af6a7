"""`apply -f` and `run --data` read YAML strictly: a repeated key, an alias bomb or endless
nesting is an error that names the file and line, with exit status 1 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clawfleet.cli.main import app
from clawfleet.cli.manifests import load_data, load_manifests
from clawfleet.cli.strict_yaml import MAX_DEPTH
from clawfleet.core.errors import InvalidInput

LAUGHS = """\
kind: Agent
metadata: {name: lol}
spec:
  adapter: command
  command: [sh]
  config:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

AGENT = "kind: Agent\nmetadata: {name: a}\nspec:\n  adapter: command\n  command: [sh]\n"


def _refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as info:
        load_manifests([str(path)])
    assert info.value.message.startswith(f"{path}: line ")
    return info.value.message


def test_a_repeated_top_level_key_is_refused_with_its_line(tmp_path: Path) -> None:
    message = _refused(tmp_path, "kind: Agent\nmetadata: {name: a}\nkind: Tenant\n")
    assert "line 3, column 1" in message
    assert "key 'kind' appears twice in its mapping (at kind)" in message


def test_a_repeated_nested_key_is_refused_with_its_path(tmp_path: Path) -> None:
    text = AGENT + "  env:\n  - name: X\n    value: '1'\n    name: Y\n"
    message = _refused(tmp_path, text)
    assert "line 9" in message
    assert "(at spec.env.0.name)" in message


def test_keys_that_load_as_the_same_value_are_repeated_keys(tmp_path: Path) -> None:
    message = _refused(tmp_path, AGENT + "  config: {1: a, 0x1: b}\n")
    assert "(at spec.config.1)" in message


def test_a_merge_key_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(AGENT + "  config:\n    base: &base {x: 1, y: 2}\n    own: {<<: *base, x: 3}\n")
    (manifest,) = load_manifests([str(path)])
    assert manifest.doc["spec"]["config"]["own"] == {"x": 3, "y": 2}


def test_billion_laughs_is_refused_before_it_expands(tmp_path: Path) -> None:
    message = _refused(tmp_path, LAUGHS)
    assert "line 12" in message  # f: 9**6 nodes, the first node past the bound
    assert "expands to more than" in message


def test_a_long_scalar_repeated_by_aliases_is_refused(tmp_path: Path) -> None:
    big = "x" * 1_000_000
    text = AGENT + f"  config:\n    a: &a {big}\n    b: [" + ", ".join(["*a"] * 20) + "]\n"
    assert "expands to more than" in _refused(tmp_path, text)


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(AGENT + "  config:\n    a: &a [1, 2]\n    b: [*a, *a]\n")
    (manifest,) = load_manifests([str(path)])
    assert manifest.doc["spec"]["config"]["b"] == [[1, 2], [1, 2]]


def test_an_alias_inside_its_own_node_is_refused(tmp_path: Path) -> None:
    assert "(a loop)" in _refused(tmp_path, AGENT + "  config: &loop {me: *loop}\n")


def test_nesting_past_the_bound_is_refused(tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    assert f"nested deeper than {MAX_DEPTH} levels" in _refused(tmp_path, AGENT + f"  x: {deep}\n")


def test_run_data_is_read_strictly_too(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"files": [], "files": ["a"]}')
    with pytest.raises(InvalidInput, match=r"key 'files' appears twice"):
        load_data(str(path))


def test_apply_of_a_bomb_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(LAUGHS)
    result = CliRunner().invoke(app, ["apply", "-f", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path}: line 12" in result.output
    assert "Traceback" not in result.output
