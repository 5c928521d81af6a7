"""Typed ids. A uid is a random UUID4 string assigned by the server."""

from __future__ import annotations

import uuid
from typing import NewType

Uid = NewType("Uid", str)
TenantName = NewType("TenantName", str)
ProjectName = NewType("ProjectName", str)


def new_uid() -> Uid:
    return Uid(str(uuid.uuid4()))
