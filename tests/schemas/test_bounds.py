"""Bounded wire types, property by property: any accepted value round-trips and the arithmetic
done on it (a run's deadline, a requeue delay) stays finite and does not raise; any refused value
is a ValidationError naming its field."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from clawfleet.domain.lifecycle import retry_delay
from clawfleet.domain.limits import (
    MAX_BACKOFF_SECONDS,
    MAX_COUNT,
    MAX_ID,
    MAX_IDLE_TIMEOUT_SECONDS,
    MAX_JSON_DEPTH,
    MAX_TASK_TIMEOUT_SECONDS,
    deadline_after,
)
from clawfleet.schemas.agents import AgentSpec
from clawfleet.schemas.base import parse_duration
from clawfleet.schemas.runner import AckIn
from clawfleet.schemas.tasks import TaskSpec
from clawfleet.schemas.tenants import Quota

M = TypeVar("M", bound=BaseModel)
NOW = datetime(2026, 1, 1, tzinfo=UTC)

durations = st.builds(
    lambda h, m, s: (
        "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n is not None) or "0s"
    ),
    *(st.one_of(st.none(), st.integers(0, 10**20)) for _ in range(3)),
)


def _fields(exc: ValidationError) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in exc.errors()]


def _check(model: type[M], document: dict[str, Any]) -> tuple[M | None, list[str]]:
    """The validated model, or None and the fields the ValidationError names."""
    try:
        return model.model_validate(document), []
    except ValidationError as exc:
        return None, _fields(exc)


@given(durations)
def test_a_task_timeout_is_accepted_with_a_usable_deadline_or_refused_by_field(text: str) -> None:
    spec = {"agent": "a", "prompt": "p", "timeout": text}
    accepted, refused = _check(TaskSpec, spec)
    if accepted is None:
        assert refused == ["timeout"]
        return
    assert accepted.timeout == text
    seconds = parse_duration(text, MAX_TASK_TIMEOUT_SECONDS)
    assert 0 <= seconds <= MAX_TASK_TIMEOUT_SECONDS
    deadline = deadline_after(NOW, seconds)
    assert deadline is None or deadline > NOW


@given(durations, st.integers(1, 20))
def test_a_backoff_is_accepted_with_a_finite_delay_or_refused_by_field(
    text: str, attempt: int
) -> None:
    accepted, refused = _check(TaskSpec, {"agent": "a", "prompt": "p", "retry": {"backoff": text}})
    if accepted is None:
        assert refused == ["retry.backoff"]
        return
    delay = retry_delay(attempt, parse_duration(text, MAX_BACKOFF_SECONDS))
    assert math.isfinite(delay) and 0 <= delay <= 300


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_any_stored_timeout_gives_a_representable_deadline(seconds: int) -> None:
    deadline = deadline_after(NOW, seconds)
    assert deadline is None or deadline <= NOW.replace(year=2026, month=1, day=31)


@given(st.text(max_size=40))
def test_an_idle_timeout_is_accepted_or_refused_by_field(text: str) -> None:
    accepted, refused = _check(AgentSpec, {"adapter": "openclaw", "idleTimeout": text})
    if accepted is None:
        assert refused == ["idleTimeout"]
    else:
        assert accepted.idle_timeout is not None
        idle = parse_duration(accepted.idle_timeout, MAX_IDLE_TIMEOUT_SECONDS)
        assert math.isfinite(float(idle))


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_quota_counts_are_bounded(count: int) -> None:
    quota, refused = _check(Quota, {"agents": count, "concurrentRuns": count})
    if quota is None:
        assert set(refused) == {"agents", "concurrentRuns"}
        assert count < 0 or count > MAX_COUNT
    else:
        assert quota.agents == quota.concurrent_runs == count
        assert 0 <= count <= MAX_COUNT


@given(st.lists(st.integers(min_value=-(10**30), max_value=10**30), max_size=5))
def test_acked_command_ids_fit_a_64_bit_column(ids: list[int]) -> None:
    accepted, refused = _check(AckIn, {"ids": ids})
    if accepted is None:
        assert refused and all(field.startswith("ids.") for field in refused)
        assert any(i < 1 or i > MAX_ID for i in ids)
    else:
        assert accepted.ids == ids and all(1 <= i <= MAX_ID for i in ids)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=60,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(json_values, st.integers(0, 60))
def test_task_data_is_accepted_and_round_trips_or_is_refused_by_field(
    value: Any, extra: int
) -> None:
    data: dict[str, Any] = {"v": value}
    for _ in range(extra):
        data = {"x": data}
    spec, refused = _check(TaskSpec, {"agent": "a", "prompt": "p", "data": data})
    if spec is None:
        assert refused == ["data"]
        return
    assert _depth(spec.data) <= MAX_JSON_DEPTH + 1
    encoded = json.dumps(spec.data, allow_nan=False)  # NaN and infinities never get in
    assert json.loads(encoded) == json.loads(json.dumps(data, allow_nan=False))
    assert spec.model_dump(mode="json")["data"] == json.loads(encoded)


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 600, 5000])
def test_the_json_depth_bound_is_exact(levels: int) -> None:
    data: dict[str, Any] = {}
    for _ in range(levels - 1):
        data = {"x": data}
    if levels <= MAX_JSON_DEPTH + 1:  # the values of `data` may hold MAX_JSON_DEPTH levels
        AgentSpec.model_validate({"adapter": "openclaw", "config": data})
        return
    with pytest.raises(ValidationError) as refused:
        AgentSpec.model_validate({"adapter": "openclaw", "config": data})
    assert _fields(refused.value) == ["config"]
    assert refused.value.errors()[0]["type"] == "json_too_deep"
