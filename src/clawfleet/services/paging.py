"""One page of a listing, and the opaque cursor that asks for the next one.

Every listing (resources, tasks, runs, instances) answers with the same ``Page``: the items and
the cursor to pass back as ``continue``, or None on the last page. A listing fetches one row more
than it returns, so it knows whether another page follows without counting. Cursors are the
sort key of the last item, JSON in URL-safe base64: opaque to clients, cheap to check here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from clawfleet.core.errors import FieldError, InvalidInput

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(
    fetched: Sequence[R],
    size: int,
    view: Callable[[R], T],
    cursor_of: Callable[[R], Sequence[str]],
) -> Page[T]:
    """The first ``size`` of ``fetched`` (``size + 1`` rows were asked for) as a page."""
    rows = fetched[:size]
    more = len(fetched) > size
    return Page([view(row) for row in rows], encode_cursor(cursor_of(rows[-1])) if more else None)


def encode_cursor(parts: Sequence[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def decode_cursor(text: str, arity: int) -> tuple[str, ...]:
    """The ``arity`` parts of a cursor this server issued; InvalidInput for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(raw, list) or len(raw) != arity:
            raise ValueError("wrong shape")
        return tuple(str(part) for part in raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInput(
            "invalid continue token; start the listing again without it",
            [FieldError("continue", "not a token this server issued", "invalid-cursor")],
        ) from exc
