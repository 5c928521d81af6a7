"""The fuzzed control plane and its schema, one fresh world per caller.

Each caller (the bootstrap admin, a developer of tenant ``acme``, the runner of one of its
instances) gets a control plane of its own, so what one caller's fuzzing deletes or changes
cannot hide paths from the next. The budget comes from the environment: ``FUZZ_EXAMPLES``
examples per operation and caller (``make fuzz`` raises it), ``FUZZ_SEED`` for the seed, and
``FUZZ_COVERAGE=1`` for schemathesis's boundary-value cases too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from schemathesis.python import asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema

from clawfleet.core.settings import Settings
from tests.fuzz.examples import with_examples
from tests.fuzz.world import DEVELOPER, PASSWORD, FuzzTarget

# Sized so the whole fuzz run (every operation, three callers) takes about two minutes on two
# cores; `make fuzz` sets FUZZ_EXAMPLES for a longer run.
DEFAULT_EXAMPLES = 10
CALLERS = ("admin", "developer", "runner")
RUNNER_PATHS = "^/api/v1/runner/"
RESIGN_SECONDS = 10 * 60


def fuzz_examples() -> int:
    return int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


def fuzz_coverage() -> bool:
    return os.environ.get("FUZZ_COVERAGE", "") not in ("", "0")


def fuzz_seed() -> int:
    return int(os.environ.get("FUZZ_SEED", "8"))


@dataclass
class Fuzzed:
    caller: str
    target: FuzzTarget
    database: Path
    signed_in_at: float = field(default_factory=time.monotonic)

    @property
    def token(self) -> str:
        """The caller's bearer token; the developer signs in again before its 15-minute access
        token runs out, so a long ``make fuzz`` keeps fuzzing past authentication."""
        if self.caller == "developer" and time.monotonic() - self.signed_in_at > RESIGN_SECONDS:
            with asgi.get_client(self.target) as client:
                session = client.post(
                    "/api/v1/auth/login", json={"username": DEVELOPER, "password": PASSWORD}
                )
            session.raise_for_status()
            self.target.world.tokens[self.caller] = session.json()["accessToken"]
            self.signed_in_at = time.monotonic()
        return self.target.world.tokens[self.caller]


def _config(caller: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": fuzz_seed(),
            "request-timeout": 10,
            "max-stream-events": 3,
            "generation": {
                "mode": "all",
                "max-examples": fuzz_examples(),
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            # The runner's token works on the runner protocol only, and nobody else's does:
            # each caller fuzzes the operations it can reach past authorization.
            "operations": [
                {
                    ("exclude-path-regex" if caller == "runner" else "include-path-regex"): (
                        RUNNER_PATHS
                    ),
                    "enabled": False,
                }
            ],
        }
    )


@pytest.fixture(scope="module", params=CALLERS)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    caller = str(request.param)
    root = tmp_path_factory.mktemp(f"fuzz-{caller}")
    database = root / "clawfleet.db"
    settings = Settings(data_dir=root / "data", database={"url": f"sqlite+aiosqlite:///{database}"})
    target = FuzzTarget(settings)
    with asgi.get_client(target):  # starts the lifespan: builds and seeds the control plane
        pass
    yield Fuzzed(caller, target, database)
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def fuzz_schema(fuzzed: Fuzzed) -> OpenApiSchema:
    document = with_examples(fuzzed.target.plane.app.openapi(), fuzzed.target.world)
    schema = schemathesis.openapi.from_dict(document, config=_config(fuzzed.caller))
    schema.app = fuzzed.target
    return schema
