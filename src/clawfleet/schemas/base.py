"""Shared pydantic configuration and field types for wire models.

Wire names are camelCase and only camelCase is accepted; unknown fields are errors, so a typo
in a manifest is reported with its path instead of being dropped silently.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from clawfleet.domain.names import label_key_problem, label_value_problem, name_problem

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
    for key in value:
        if problem := label_key_problem(key):
            raise ValueError(f"invalid annotation key {key[:80]!r}: {problem}")
    if sum(len(k) + len(v) for k, v in value.items()) > 256 * 1024:
        raise ValueError("annotations may hold at most 256 KiB in total")
    return value


_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def _check_env_name(value: str) -> str:
    if not _ENV_RE.match(value):
        raise ValueError(
            f"invalid environment variable name {value[:80]!r}: use letters, digits and '_', "
            "not starting with a digit"
        )
    return value


_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in a duration like ``90s``, ``30m`` or ``1h30m``."""
    match = _DURATION_RE.match(text)
    if not text or not match:
        raise ValueError(f"invalid duration {text[:40]!r}: use e.g. '45s', '30m' or '1h30m'")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


_QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def _check_quantity(value: str) -> str:
    if not _QUANTITY_RE.match(value):
        raise ValueError(f"invalid quantity {value[:40]!r}: use e.g. '500m', '2', '512Mi' or '2Gi'")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_check_annotations)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
Duration = Annotated[str, AfterValidator(_check_duration)]
Quantity = Annotated[str, AfterValidator(_check_quantity)]
