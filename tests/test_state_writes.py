"""DESIGN rule 4 as a test: services and controllers never write a state or phase column
themselves; they persist outcomes through the repository moves (``TaskRepository.move``,
``RunRepository.finish``, ``InstanceRepository.move_instance``), which check the move against the
lifecycle rules and compare-and-swap on the stored state.

The scans look at the source of ``services/`` and ``controllers/``: every call that writes columns
(a repository ``update``, SQLAlchemy ``values``) must not set a task or run ``state``; no instance
``phase`` is written by a dict key, a subscript, a keyword or SQL on the table; and neither
package builds SQL itself. The repositories refuse the same at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import clawfleet

SRC = Path(clawfleet.__file__).parent
PACKAGES = ("services", "controllers")
WRITES = {"update", "values", "update_many"}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (SRC / package).rglob("*.py"))


def _written_columns(call: ast.Call) -> set[str]:
    columns = {kw.arg for kw in call.keywords if kw.arg}
    for arg in call.args:
        if isinstance(arg, ast.Dict):
            columns |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
    return {c for c in columns if isinstance(c, str)}


def _direct_writes(columns: set[str]) -> list[str]:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
                and (hit := _written_columns(node) & columns)
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} writes {sorted(hit)}")
    return found


def test_no_direct_task_or_run_state_writes() -> None:
    assert _direct_writes({"state"}) == []


def test_services_and_controllers_build_no_sql() -> None:
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module == "sqlalchemy" or node.module == "clawfleet.store.tables")
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} imports {node.module}")
    assert offenders == []


def test_the_scan_sees_a_direct_write() -> None:
    """The scan is not vacuous: the old dispatcher's way of writing a state is caught."""
    source = 'async def f(tasks):\n    await tasks.update("t1", {"state": "done", "x": 1})\n'
    call = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr == "update")  # fmt: skip
    assert _written_columns(call) & {"state"} == {"state"}


async def test_the_task_repository_refuses_a_state_write(db: object) -> None:
    from clawfleet.store.db import Database
    from clawfleet.store.repositories.tasks import TaskRepository

    assert isinstance(db, Database)
    async with db.write() as conn:
        with pytest.raises(ValueError, match="only through move"):
            await TaskRepository(conn).update("t1", {"state": "done"})


# -- instance phases -----------------------------------------------------------------------------

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
    for path in _sources():
        for line, what in phase_writes(ast.parse(path.read_text(), str(path))):
            found.append(f"{path.relative_to(SRC)}:{line}: {what}")
    assert found == [], (
        "instance phases change only through InstanceRepository.move_instance "
        "(InstanceService.transition): " + "; ".join(found)
    )
