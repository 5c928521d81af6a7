from __future__ import annotations

from pathlib import Path

import pytest

from clawfleet.cli.manifests import load_manifests
from clawfleet.core.errors import InvalidInput

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_loads_parents_first() -> None:
    manifests = load_manifests([str(REPO / "examples" / "quickstart.yaml")])
    kinds = [m.kind for m in manifests]
    assert kinds == ["Tenant", "Project", "Secret", "Agent", "Agent"]
    assert [m.ref for m in manifests][-2:] == ["agent/echo", "agent/reviewer"]


def test_directory_and_list_documents(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        "kind: Agent\nmetadata: {name: a}\n---\n# empty document\n---\n"
    )
    (tmp_path / "a.json").write_text(
        '{"kind": "TenantList", "items": [{"kind": "Tenant", "metadata": {"name": "t"}}]}'
    )
    (tmp_path / "notes.txt").write_text("ignored")
    manifests = load_manifests([str(tmp_path)])
    assert [m.ref for m in manifests] == ["tenant/t", "agent/a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Agent\n  metadata: [\n", "line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("kind: Gadget\nmetadata: {name: x}\n", "unknown or missing kind"),
        ("metadata: {name: x}\n", "unknown or missing kind"),
        ("kind: agent\nmetadata: {name: x}\n", "write kind 'agent' as 'Agent'"),
    ],
)
def test_bad_manifests_say_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as info:
        load_manifests([str(path)])
    assert str(path) in info.value.message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_manifests([str(tmp_path / "nope.yaml")])
    with pytest.raises(InvalidInput, match="holds no"):
        load_manifests([str(tmp_path)])


def test_relative_agent_commands_resolve_next_to_the_manifest() -> None:
    manifests = load_manifests([str(REPO / "examples" / "agents" / "staged.yaml")])
    commands = {m.name: m.doc["spec"]["command"] for m in manifests}
    assert commands["staged"] == ["python3", str(REPO / "examples" / "agents" / "staged_agent.py")]
    assert commands["shell"] == ["sh", str(REPO / "examples" / "agents" / "shell_agent.sh")]
