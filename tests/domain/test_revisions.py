"""Golden tests of the Revision digest: what changes it, and what must not."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from clawfleet.domain.revisions import Revision, SecretRef
from clawfleet.schemas.agents import AgentSpec

BASE = Revision(
    adapter="command",
    command=("python", "agent.py"),
    config={"protocol": "jsonl", "mode": "per-run"},
    env={"LOG_LEVEL": "info"},
    secret_env={"TOKEN": SecretRef("gh", "token")},
    instructions="Review the diff.",
    runtime="local",
    concurrency=2,
)

# Pinned: a change here means every stored instance looks outdated and is replaced once.
# Change it only on purpose, together with domain.revisions.FORMAT.
GOLDEN = "40a3d54b127abad8461f8b769ef717c995762eaa983d4f78dd0c8dcddef12ddd"


def test_the_digest_is_pinned() -> None:
    assert BASE.digest == GOLDEN


def test_the_same_input_gives_the_same_digest() -> None:
    again = Revision(
        adapter="command",
        command=("python", "agent.py"),
        config={"mode": "per-run", "protocol": "jsonl"},  # key order does not matter
        env={"LOG_LEVEL": "info"},
        secret_env={"TOKEN": SecretRef("gh", "token")},
        instructions="Review the diff.",
        runtime="local",
        concurrency=2,
    )
    assert again.digest == BASE.digest
    assert len(BASE.digest) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"adapter": "openclaw"},
        {"command": ("python", "agent.py", "--fast")},
        {"config": {"protocol": "text", "mode": "per-run"}},
        {"env": {"LOG_LEVEL": "debug"}},  # a value of plain env
        {"env": {"LOG_LEVEL": "info", "EXTRA": "1"}},  # a name
        {"secret_env": {"TOKEN": SecretRef("gh", "other-key")}},
        {"secret_env": {"TOKEN": SecretRef("gl", "token")}},
        {"secret_env": {"API_TOKEN": SecretRef("gh", "token")}},
        {"instructions": "Review the diff carefully."},
        {"instructions": None},
        {"runtime": "docker"},
        {"concurrency": 3},
    ],
    ids=lambda change: next(iter(change)),
)
def test_each_field_changes_the_digest(change: dict[str, Any]) -> None:
    assert dataclasses.replace(BASE, **change).digest != BASE.digest


def spec(**fields: Any) -> AgentSpec:
    doc = {"adapter": "command", "command": ["python", "agent.py"],
           "secretEnv": {"TOKEN": {"secret": "gh", "key": "token"}}, **fields}  # fmt: skip
    return AgentSpec.model_validate(doc)


@pytest.mark.parametrize(
    "fields",
    [
        {"replicas": 5},
        {"replicas": 0},
        {"state": "Sleeping"},
        {"state": "Stopped"},
        {"idleTimeout": "5m"},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_replicas_state_and_idle_timeout_do_not_change_it(fields: dict[str, Any]) -> None:
    assert spec(**fields).revision().digest == spec().revision().digest


def test_the_agent_spec_gives_its_revision() -> None:
    revision = spec(env={"A": "1"}, concurrency=4).revision()
    assert revision.command == ("python", "agent.py")
    assert revision.env == {"A": "1"}
    assert revision.secret_env == {"TOKEN": SecretRef("gh", "token")}
    assert revision.concurrency == 4
    assert revision.runtime == "local"


def test_secret_values_are_not_part_of_it() -> None:
    assert "token" in BASE.canonical()  # the key name
    bundle = BASE.bundle()
    assert bundle["envNames"] == ["LOG_LEVEL", "TOKEN"]
    assert bundle["secretEnvNames"] == ["TOKEN"]
