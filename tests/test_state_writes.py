"""DESIGN rule 4 as a test: services and controllers never write a state or phase column
themselves; they persist outcomes through the repository moves, which check the stored state.

The scan looks at every call in ``services/`` and ``controllers/`` that writes columns (a
repository ``update``, SQLAlchemy ``values``) and fails if it sets ``state`` or ``phase``; it also
fails if those packages build SQL themselves. The repositories refuse the same at run time.
"""

from __future__ import annotations

import ast
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
