"""The fuzzer's "stored nothing" check sees a write to any table, and tells denials apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.fuzz.store_digest import audit_outcomes_after, take_digest


def _store(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, verb TEXT, kind TEXT, name TEXT,"
            " outcome TEXT)"
        )
        conn.execute("INSERT INTO tasks (name) VALUES ('t1')")


def test_a_changed_row_is_seen_and_named(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _store(path)
    before = take_digest(path)
    assert before.changed_tables(take_digest(path)) == []
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tasks SET name = 't2'")
    assert before.changed_tables(take_digest(path)) == ["tasks"]


def test_audit_records_are_compared_apart_by_outcome(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _store(path)
    before = take_digest(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO audit_log (verb, kind, name, outcome) VALUES"
                     " ('create', 'Agent', 'a1', 'denied')")  # fmt: skip
    assert before.changed_tables(take_digest(path)) == []
    assert audit_outcomes_after(path, before.audit_id) == [("create", "Agent", "a1", "denied")]
