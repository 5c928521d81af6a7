"""The largest values the API accepts, and arithmetic on stored values that cannot overflow.

Every number, duration, quantity, string, list and free-form JSON document a wire model takes has
a maximum (``docs/limits.md`` lists them). The schemas refuse a value past its maximum at
admission, so what is stored can always be used. The helpers here are the second line: a record
stored before a bound existed (or edited in the database) is clamped to the bound when it is
used, so one bad row can never make a claim, a quota check or a controller pass fail for everyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DAY = 24 * 3600

MAX_TASK_TIMEOUT_SECONDS = 30 * DAY  # a task's `timeout`
MAX_BACKOFF_SECONDS = 3600  # a task's `retry.backoff` (retries back off at most 300 s anyway)
MAX_IDLE_TIMEOUT_SECONDS = 30 * DAY  # an agent's `idleTimeout`
MAX_DURATION_SECONDS = 30 * DAY  # any other duration
MAX_DURATION_TEXT = 32  # characters of a duration such as "1h30m"

MAX_COUNT = 1_000_000_000  # quota counts: agents, instances, concurrentRuns
MAX_ID = 2**63 - 1  # ids and sequence numbers a runner sends back (a signed 64-bit column)

MAX_JSON_DEPTH = 32  # nesting of free-form JSON: task data, agent config, results, events
MAX_JSON_BYTES = 1024 * 1024  # its encoded size
MAX_MAP_ENTRIES = 1024  # env, secretEnv, stringData: entries of one map
MAX_LINE = 1024  # a one-line string: a display name, a model name, a version
MAX_TEXT = 256 * 1024  # a free text without a bound of its own


def clamp_seconds(seconds: int | None, maximum: int) -> int | None:
    """A stored duration within ``[0, maximum]``; None stays None (no limit)."""
    if seconds is None:
        return None
    return max(0, min(seconds, maximum))


def deadline_after(now: datetime, seconds: int | None) -> datetime | None:
    """When a run started ``now`` with a timeout of ``seconds`` must end; None: never.

    A stored timeout past the maximum (from before it was checked) counts as the maximum, so
    the deadline is always a representable datetime.
    """
    clamped = clamp_seconds(seconds, MAX_TASK_TIMEOUT_SECONDS)
    return now + timedelta(seconds=clamped) if clamped else None
