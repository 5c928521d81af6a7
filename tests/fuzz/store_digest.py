"""A cheap fingerprint of everything the store holds, to prove a refused request wrote nothing.

Read with the standard library's sqlite3 from the test's own thread: the fuzzed app runs in
another thread's event loop, and every request has finished before the digest is taken. The
audit log is the one table a refusal may write to (a denied mutation is recorded, see
``services/audit.py``), so it is compared apart: new rows must all say ``denied``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

AUDIT = "audit_log"


@dataclass(frozen=True)
class Digest:
    tables: dict[str, str]  # table -> sha256 of its rows, in a stable order
    audit_id: int  # the newest audit record

    def changed_tables(self, later: Digest) -> list[str]:
        names = set(self.tables) | set(later.tables)
        return sorted(n for n in names if self.tables.get(n) != later.tables.get(n))


def take_digest(path: Path) -> Digest:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        tables = {}
        for name in names:
            if name == AUDIT:
                continue
            rows = sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{name}"'))
            tables[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        audit_id = conn.execute(f"SELECT coalesce(max(id), 0) FROM {AUDIT}").fetchone()[0]
    return Digest(tables, int(audit_id))


def audit_outcomes_after(path: Path, audit_id: int) -> list[tuple[str, str, str, str]]:
    """(verb, kind, name, outcome) of every audit record newer than ``audit_id``."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return list(
            conn.execute(
                f"SELECT verb, kind, name, outcome FROM {AUDIT} WHERE id > ? ORDER BY id",
                (audit_id,),
            )
        )
