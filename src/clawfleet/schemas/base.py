"""Shared pydantic configuration and field types for wire models.

Wire names are camelCase and only camelCase is accepted; unknown fields are errors, so a typo
in a manifest is reported with its path instead of being dropped silently.

Every value a wire model takes has a maximum (``domain/limits.py``, listed in ``docs/limits.md``),
checked here before anything else runs, so a stored value can always be used. No string holds a
NUL character (PostgreSQL cannot store it and a process environment cannot carry it); one-line
strings (``Line``) hold no control character at all. Secret values are the one exception: they
are bytes, sealed before they are stored.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from clawfleet.domain import limits
from clawfleet.domain.names import label_key_problem, label_value_problem, name_problem
from clawfleet.domain.quantities import quantity_problem

API_VERSION = "clawfleet.dev/v1"


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
    )


class OutModel(BaseModel):
    """A model the server builds and returns: camelCase on the wire, built by field name."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        frozen=True,
    )


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _check_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise PydanticCustomError(
            "nul_character",
            "must not contain a NUL character (U+0000), at character {position}",
            {"position": value.index("\x00")},
        )
    return value


def _check_line(value: str | None) -> str | None:
    if value is not None and (match := _CONTROL_RE.search(value)):
        raise PydanticCustomError(
            "control_character",
            "must be one line without control characters; found {char} at character {position}",
            {"char": f"U+{ord(match.group()):04X}", "position": match.start()},
        )
    return value


def _check_name(value: str) -> str:
    if problem := name_problem(value):
        raise ValueError(f"invalid name {value[:80]!r}: {problem}")
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 64:
        raise ValueError("at most 64 labels")
    for key, item in value.items():
        if problem := label_key_problem(key):
            raise ValueError(f"invalid label key {key[:80]!r}: {problem}")
        if problem := label_value_problem(item):
            raise ValueError(f"invalid value for label {key!r}: {problem}")
    return value


def _check_annotations(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if problem := label_key_problem(key):
            raise ValueError(f"invalid annotation key {key[:80]!r}: {problem}")
        if "\x00" in item:
            raise ValueError(f"the value of annotation {key!r} contains a NUL character (U+0000)")
    if sum(len(k) + len(v) for k, v in value.items()) > 256 * 1024:
        raise ValueError("annotations may hold at most 256 KiB in total")
    return value


_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


def _check_env_name(value: str) -> str:
    if not _ENV_RE.fullmatch(value):
        raise ValueError(
            f"invalid environment variable name {value[:80]!r}: use letters, digits and '_', "
            "not starting with a digit"
        )
    return value


_DURATION_RE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str, maximum: int = limits.MAX_DURATION_SECONDS) -> int:
    """Seconds in a duration like ``90s``, ``30m`` or ``1h30m``, at most ``maximum``."""
    match = _DURATION_RE.fullmatch(text) if len(text) <= limits.MAX_DURATION_TEXT else None
    if not text or not match:
        raise ValueError(f"invalid duration {text[:40]!r}: use e.g. '45s', '30m' or '1h30m'")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total > maximum:
        raise ValueError(f"duration {text!r} is longer than the maximum of {maximum}s")
    return total


def _check_duration(maximum: int, value: str) -> str:
    try:
        parse_duration(value, maximum)
    except ValueError as exc:
        raise PydanticCustomError("invalid_duration", str(exc)) from exc
    return value


def _check_quantity(value: str) -> str:
    if problem := quantity_problem(value):
        raise PydanticCustomError("invalid_quantity", problem)
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_check_annotations)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
# Give each field of these a max_length. The optional ones put None inside the annotation, so
# the length is checked (and reported as string-too-long) before the characters are.
Text = Annotated[str, AfterValidator(_check_text)]
"""Free text, possibly of several lines, without a NUL character."""
TextOrNone = Annotated[str | None, AfterValidator(_check_text)]
Line = Annotated[str, AfterValidator(_check_line)]
"""One line without control characters."""
LineOrNone = Annotated[str | None, AfterValidator(_check_line)]
Duration = Annotated[str, AfterValidator(partial(_check_duration, limits.MAX_DURATION_SECONDS))]
TaskTimeout = Annotated[
    str, AfterValidator(partial(_check_duration, limits.MAX_TASK_TIMEOUT_SECONDS))
]
Backoff = Annotated[str, AfterValidator(partial(_check_duration, limits.MAX_BACKOFF_SECONDS))]
IdleTimeout = Annotated[
    str, AfterValidator(partial(_check_duration, limits.MAX_IDLE_TIMEOUT_SECONDS))
]
Quantity = Annotated[str, AfterValidator(_check_quantity)]
