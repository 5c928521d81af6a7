"""The one error tree of ClawFleet.

Every error a caller can act on is a ``ClawfleetError`` with a stable ``code``. The API layer maps
each class to an HTTP status in one place (``clawfleet.api.problems``); the CLI prints ``str(err)``.
Messages say what happened and what to do next.

    ClawfleetError
    ├── InvalidInput            bad request data (422); carries field errors
    │   └── InvalidSelector
    ├── NotFound                (404)
    ├── AlreadyExists           (409)
    ├── Conflict                stale resourceVersion, dependents, idempotency reuse (409)
    ├── PayloadTooLarge         (413)
    ├── Unauthenticated         no or bad credentials (401)
    ├── Forbidden               authenticated but not allowed (403)
    ├── RateLimited             too many requests; retry after ``retry_after`` seconds (429)
    ├── ConfigurationError      settings or data dir unusable (not an HTTP error)
    ├── TemporaryError          worth retrying after ``delay`` seconds
    └── PermanentError          retrying will not help
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; ``path`` is dotted, e.g. ``spec.replicas`` or ``spec.env.0``."""

    path: str
    message: str
    code: str = "invalid"


class ClawfleetError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ClawfleetError):
    code = "invalid"

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class InvalidSelector(InvalidInput):
    code = "invalid-selector"


class NotFound(ClawfleetError):
    code = "not-found"


class AlreadyExists(ClawfleetError):
    code = "already-exists"


class Conflict(ClawfleetError):
    code = "conflict"

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class PayloadTooLarge(ClawfleetError):
    code = "payload-too-large"


class Unauthenticated(ClawfleetError):
    code = "unauthenticated"


class Forbidden(ClawfleetError):
    code = "forbidden"


class RateLimited(ClawfleetError):
    code = "rate-limited"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(ClawfleetError):
    code = "configuration"


class TemporaryError(ClawfleetError):
    code = "temporary"

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(ClawfleetError):
    code = "permanent"
