"""The Secret wire model. Values come in (``stringData`` or base64 ``data``) and never go out.

``allowedAgents`` names the agents of the secret's project that may be handed its values although
whoever applies them may not use the secret (``services/secret_use.py``); ``"*"`` allows every
agent of the project.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from clawfleet.domain.limits import MAX_MAP_ENTRIES
from clawfleet.domain.names import name_problem
from clawfleet.schemas.base import Line, WireModel
from clawfleet.schemas.meta import ObjectMeta

SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]{1,253}$"  # noqa: S105 - a pattern
SECRET_MAX_BYTES = 1024 * 1024
_KEY_RE = re.compile(SECRET_KEY_PATTERN)
EVERY_AGENT = "*"


def _check_agent(value: str) -> str:
    if value != EVERY_AGENT and (problem := name_problem(value)):
        raise ValueError(f"invalid agent name {value[:80]!r}: {problem} (or '*' for every agent)")
    return value


AllowedAgent = Annotated[str, AfterValidator(_check_agent)]


class SecretSpec(WireModel):
    type: Line = Field(default="Opaque", max_length=128)
    # SecretStr keeps values out of repr() and so out of any log line or traceback. Values are
    # bytes, sealed before they are stored: the one place a string may hold a NUL.
    data: dict[str, SecretStr] = Field(default_factory=dict, max_length=MAX_MAP_ENTRIES)
    string_data: dict[str, SecretStr] = Field(default_factory=dict, max_length=MAX_MAP_ENTRIES)
    allowed_agents: list[AllowedAgent] = Field(default_factory=list, max_length=256)

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key, item in value.items():
            try:
                base64.b64decode(item.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"value of key {key!r} is not valid base64") from exc
        return value

    @model_validator(mode="after")
    def _keys_are_valid(self) -> SecretSpec:
        for key in [*self.data, *self.string_data]:
            if not _KEY_RE.fullmatch(key):
                raise ValueError(
                    f"invalid secret key {key[:80]!r}: use letters, digits, '-', '_' or '.'"
                )
        both = set(self.data) & set(self.string_data)
        if both:
            raise ValueError(f"keys given in both data and stringData: {sorted(both)}")
        if sum(len(v) for v in self.values().values()) > SECRET_MAX_BYTES:
            raise ValueError(f"a secret holds at most {SECRET_MAX_BYTES} bytes")
        return self

    def values(self) -> dict[str, bytes]:
        """The plaintext values by key."""
        decoded = {k: base64.b64decode(v.get_secret_value()) for k, v in self.data.items()}
        decoded.update({k: v.get_secret_value().encode() for k, v in self.string_data.items()})
        return decoded


class SecretIn(WireModel):
    api_version: Literal["clawfleet.dev/v1"] = "clawfleet.dev/v1"
    kind: Literal["Secret"]
    metadata: ObjectMeta
    spec: SecretSpec = SecretSpec()
    status: dict[str, object] | None = None
