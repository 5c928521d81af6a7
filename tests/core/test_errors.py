"""The error tree is the catalogue a client reads: every error class is drawn in the tree of
``core/errors.py`` and every code it carries is listed in ``docs/errors.md``."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import clawfleet
from clawfleet.core import errors
from clawfleet.core.errors import ClawfleetError, Conflict

DOCS = Path(__file__).parents[2] / "docs" / "errors.md"


def _every_error_class() -> set[type[ClawfleetError]]:
    for module in pkgutil.walk_packages(clawfleet.__path__, "clawfleet."):
        # Entry points and Alembic scripts run when imported; neither defines an error.
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: set[type[ClawfleetError]] = set()
    todo = [ClawfleetError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_error_class_is_drawn_in_the_tree() -> None:
    tree = errors.__doc__ or ""
    missing = {cls.__name__ for cls in _every_error_class() if f" {cls.__name__} " not in tree}
    assert missing == set(), "draw these in the docstring of core/errors.py"


def test_every_code_is_documented() -> None:
    docs = DOCS.read_text()
    codes = {cls.code for cls in _every_error_class() if cls.__name__ != "ApiError"}
    assert {code for code in codes if f"`{code}`" not in docs} == set()


def test_each_kind_of_conflict_has_a_code_of_its_own() -> None:
    conflicts = [c for c in _every_error_class() if issubclass(c, Conflict) and c is not Conflict]
    codes = [cls("conflicting").code for cls in conflicts if cls.__init__ is Conflict.__init__]
    assert len(codes) == len(set(codes)) and Conflict.code not in codes
