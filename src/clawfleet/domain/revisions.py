"""What an instance runs, as one content-hashed value: the minimal Revision.

An instance is replaced when what it runs changes, not whenever its agent's spec changes:
scaling, sleeping or waking an agent must leave its running instances alone. A ``Revision``
holds exactly what goes into a launch and into the runner's bundle (adapter, command, config,
the names and values of plain ``env``, ``secretEnv`` references, instructions, runtime,
concurrency), and nothing else: not replicas, state, idleTimeout or labels. Its digest is the
sha256 of a canonical JSON form, the same on every machine and every run. A ``secretEnv`` entry
is the secret's name and key, never its value, so no secret is hashed (rotating a value does not
replace instances; they read it at their next launch).

The revisions issue builds history, rollouts and templates on this value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Bumped when the canonical form changes, so that digests of different forms never collide.
FORMAT = 1


@dataclass(frozen=True)
class SecretRef:
    secret: str
    key: str


@dataclass(frozen=True)
class Revision:
    adapter: str
    command: tuple[str, ...]
    config: Mapping[str, Any]
    env: Mapping[str, str]
    secret_env: Mapping[str, SecretRef]
    instructions: str | None
    runtime: str
    concurrency: int

    def canonical(self) -> str:
        """The JSON that the digest hashes: sorted keys, no insignificant whitespace."""
        doc = {
            "format": FORMAT,
            "adapter": self.adapter,
            "command": list(self.command),
            "config": self.config,
            "env": dict(self.env),
            "secretEnv": {
                name: {"secret": ref.secret, "key": ref.key}
                for name, ref in self.secret_env.items()
            },
            "instructions": self.instructions,
            "runtime": self.runtime,
            "concurrency": self.concurrency,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def digest(self) -> str:
        """64 hex characters; equal for equal revisions, different for any other."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def bundle(self) -> dict[str, Any]:
        """What the runner needs to start the agent program (values of env arrive in its
        environment, not here)."""
        return {
            "adapter": self.adapter,
            "command": list(self.command),
            "config": dict(self.config),
            "envNames": sorted([*self.env, *self.secret_env]),
            "secretEnvNames": sorted(self.secret_env),
            "instructions": self.instructions,
        }
