"""The settings of the `command` adapter: which protocol the program speaks and how long it lives.

A pure module, so that the control plane can check an Agent's ``spec.config`` before any runner
sees it; the driver parses the same way and refuses a bad config with ``PermanentError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from clawfleet.core.errors import PermanentError

PROTOCOLS = ("jsonl", "text")
MODES = ("per-run", "long-lived")
_KNOWN_KEYS = ("mode", "protocol")


@dataclass(frozen=True)
class CommandConfig:
    protocol: Literal["jsonl", "text"] = "jsonl"
    mode: Literal["per-run", "long-lived"] = "per-run"


def validate_command_config(config: Mapping[str, Any]) -> list[str]:
    """Every problem with a command adapter config, as sentences; empty when it is valid."""
    if not isinstance(config, Mapping):
        return [f"config must be a mapping, got {type(config).__name__}"]
    problems = [
        f"config.{key} is not a command adapter setting; the known settings are "
        + ", ".join(_KNOWN_KEYS)
        for key in sorted(str(key) for key in config if key not in _KNOWN_KEYS)
    ]
    protocol = config.get("protocol", "jsonl")
    if protocol not in PROTOCOLS:
        problems.append(f"config.protocol must be 'jsonl' or 'text', got {_show(protocol)}")
    mode = config.get("mode", "per-run")
    if mode not in MODES:
        problems.append(f"config.mode must be 'per-run' or 'long-lived', got {_show(mode)}")
    if mode == "long-lived" and protocol == "text":
        problems.append(
            "config.mode 'long-lived' needs config.protocol 'jsonl': "
            "plain text cannot say which run a line belongs to"
        )
    return problems


def parse_command_config(config: Mapping[str, Any]) -> CommandConfig:
    """The config as a ``CommandConfig``; raises PermanentError listing every problem."""
    problems = validate_command_config(config)
    if problems:
        raise PermanentError("invalid command adapter config: " + "; ".join(problems))
    return CommandConfig(
        protocol=config.get("protocol", "jsonl"), mode=config.get("mode", "per-run")
    )


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
