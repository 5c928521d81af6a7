"""Typed ids. A uid is a random UUID4 string assigned by the server."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import NewType

Uid = NewType("Uid", str)
TenantName = NewType("TenantName", str)
ProjectName = NewType("ProjectName", str)


def new_uid() -> Uid:
    return Uid(str(uuid.uuid4()))


def _ordered(prefix: str) -> str:
    # Time-ordered (ms, 12 hex) + random (10 hex): sortable, unique, a valid resource name.
    millis = time.time_ns() // 1_000_000
    return f"{prefix}{millis:012x}{secrets.token_hex(5)}"


def new_task_id() -> str:
    return _ordered("t")


def new_run_id() -> str:
    return _ordered("r")


_TASK_ID = re.compile(r"^t[0-9a-f]{22}$")


def is_task_id(text: str) -> bool:
    """Whether ``text`` has the shape of a server-assigned task id."""
    return bool(_TASK_ID.match(text))
