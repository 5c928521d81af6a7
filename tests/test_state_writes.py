"""No service or controller writes a state or phase column directly (DESIGN.md §4 rule 4).

Every change of an instance's phase goes through ``InstanceRepository.move_instance``, which
checks the lifecycle rules against the stored phase and compare-and-swaps on it. This scans the
source of ``services`` and ``controllers`` for the ways to write the column around it: a
``"phase"`` key in a dict or a subscript assignment, a ``phase=`` keyword passed to an update,
an insert or ``.values()``, and SQL on the ``instances`` table itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import clawfleet

SRC = Path(clawfleet.__file__).parent
SCANNED = ("services", "controllers")
WRITE_CALLS = {"update", "values", "insert", "insert_many", "execute"}


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def phase_writes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) for every direct write of an instance phase in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value == "phase":
                    yield node.lineno, 'a "phase" key'
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.slice, ast.Constant)
                    and target.slice.value == "phase"
                ):
                    yield node.lineno, 'an assignment to ["phase"]'
        elif isinstance(node, ast.Call) and _callee(node) in WRITE_CALLS:
            for keyword in node.keywords:
                if keyword.arg == "phase":
                    yield node.lineno, f"phase= passed to {_callee(node)}()"
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "clawfleet.store.tables"
            and any(alias.name == "instances" for alias in node.names)
        ):
            yield node.lineno, "SQL on the instances table"


def test_the_scan_finds_each_kind_of_direct_write() -> None:
    source = """
from clawfleet.store.tables import instances
row = {"phase": "Running"}
values["phase"] = "Stopped"
await repo.update(instance_id, phase="Lost")
query.values(phase="Starting")
"""
    assert sorted(line for line, _ in phase_writes(ast.parse(source))) == [2, 3, 4, 5, 6]


def test_no_direct_instance_phase_writes() -> None:
    found = []
    for package in SCANNED:
        for path in sorted((SRC / package).rglob("*.py")):
            for line, what in phase_writes(ast.parse(path.read_text(), str(path))):
                found.append(f"{path.relative_to(SRC)}:{line}: {what}")
    assert found == [], (
        "instance phases change only through InstanceRepository.move_instance "
        "(InstanceService.transition): " + "; ".join(found)
    )
