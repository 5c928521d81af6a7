"""The one error tree of ClawFleet.

Every error a caller can act on is a ``ClawfleetError`` with a stable ``code``: the ``code`` of
the API's ``application/problem+json`` answers, listed with what to do about each in
``docs/errors.md``. A code is named by a class, never written as a literal where it is raised, so
that a client (and a reader) can find every code here. The API layer maps each class to an HTTP
status in one place (``clawfleet.api.problems``); the CLI prints ``str(err)``. Messages say what
happened and what to do next.

    ClawfleetError                  code
    ├── InvalidInput                invalid                 bad request data (422); field errors
    │   └── InvalidSelector         invalid-selector
    ├── NotFound                    not-found               (404)
    │   └── NotVisible              not-found               the caller holds no role there
    ├── AlreadyExists               already-exists          (409)
    ├── Conflict                    conflict                (409); each subclass is one code
    │   ├── StaleVersion            stale-resource-version  changed since the version you sent
    │   ├── ConcurrentWrite         concurrent-write        lost a race with another writer
    │   ├── HasDependents           has-dependents          delete the children first
    │   ├── IdempotencyKeyReused    idempotency-key-reused  same key, different request
    │   ├── InstanceStopped         instance-stopped        the runner's instance is stopped
    │   ├── NotRunning              not-running             only a running task can be steered
    │   └── InvalidTransition       invalid-transition      (domain.lifecycle) a forbidden move
    ├── PayloadTooLarge             payload-too-large       (413)
    ├── Unauthenticated             unauthenticated         no or bad credentials (401)
    ├── Forbidden                   forbidden               authenticated but not allowed (403)
    │   └── QuotaExceeded           quota-exceeded          a tenant or project quota is full
    ├── RateLimited                 rate-limited            retry after ``retry_after`` s (429)
    ├── ConfigurationError          configuration           settings or data dir unusable
    ├── TemporaryError              temporary               worth retrying after ``delay`` s (503)
    ├── PermanentError              permanent               retrying will not help (500)
    │   ├── ProgramStartError       agent-start-failed      (adapters.command_spawn)
    │   └── CorruptRecord           corrupt-record          (runtimes.local_records)
    ├── ClientError                 client                  (client.http) the CLI's own mistakes
    ├── ApiError                    the server's code       (client.http) a problem answer
    ├── RunnerRefused               error                   (client.runner) a 4xx for good
    ├── ControlPlaneUnreachable     control-plane-unreachable  (client.runner) gave up retrying
    └── AgentStartFailed            agent-start-failed      (runner.loops) reported, then exit

The classes in parentheses live next to their one use; the rest are here.
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


class NotVisible(NotFound):
    """Raised instead of Forbidden where the caller holds no role at all: a 404, so that what a
    caller may not see does not exist for it (not even a name in another tenant)."""


class AlreadyExists(ClawfleetError):
    code = "already-exists"


class Conflict(ClawfleetError):
    """The request is valid but clashes with the stored state. Raise a subclass, which names the
    code; ``code=`` remains for call sites that have not moved to one yet."""

    code = "conflict"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class StaleVersion(Conflict):
    """The resource changed since the ``resourceVersion`` the caller sent (or during the write)."""

    code = "stale-resource-version"


class ConcurrentWrite(Conflict):
    """Another request wrote the same thing at the same moment; trying again is safe."""

    code = "concurrent-write"


class HasDependents(Conflict):
    """A tenant or project still holds resources; they must be deleted first."""

    code = "has-dependents"


class IdempotencyKeyReused(Conflict):
    code = "idempotency-key-reused"


class InstanceStopped(Conflict):
    """A runner spoke for an instance that is stopped or being stopped."""

    code = "instance-stopped"


class NotRunning(Conflict):
    """The task has no running run to steer."""

    code = "not-running"


class PayloadTooLarge(ClawfleetError):
    code = "payload-too-large"


class Unauthenticated(ClawfleetError):
    code = "unauthenticated"


class Forbidden(ClawfleetError):
    code = "forbidden"


class QuotaExceeded(Forbidden):
    code = "quota-exceeded"


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
