"""Teach the fuzzer the seeded names and a valid body per route, in its copy of the OpenAPI.

A random string in ``{name}`` almost always meets a 404, so each path and scoping parameter
becomes "one of the seeded names, or anything the route's own schema allows": the fuzzer then
reaches real objects of both tenants and still tries hostile names. Each manifest route gets a
valid body as its example, which the examples phase sends as it is and the fuzzing phase
mutates. An integer parameter without a maximum gets a value past 64 bits as its example. Only the
copy handed to schemathesis changes; the app serves its own document.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.factories import agent, project, secret, tenant
from tests.fuzz.world import AGENT, DEVELOPER, PROJECT, SECRET, TENANTS, World

# Which seeded names a ``{name}`` path parameter takes, by the path's collection.
NAME_BY_COLLECTION = {
    "tenants": "tenant",
    "projects": "project",
    "agents": "agent",
    "secrets": "secret",
    "rolebindings": "rolebinding",
    "users": "name",
    "serviceaccounts": "serviceaccount",
    "instances": "instance",
    "tasks": "task",
}
# Integers a random draw rarely reaches but a database column cannot hold (SQLite and
# PostgreSQL integers are 64-bit): an integer parameter without a maximum may meet them.
HUGE = [2**63, 10**30]
# Query parameters that name an object, with the seeded names they take.
NAME_BY_QUERY = {"tenant": "tenant", "project": "project", "agent": "agent", "task": "task"}


def _binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "clawfleet.dev/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "tenant": TENANTS[0]},
        "spec": {"role": "viewer", "subjects": [{"kind": "User", "name": DEVELOPER}]},
    }


def _task() -> dict[str, Any]:
    return {
        "metadata": {"tenant": TENANTS[0], "project": PROJECT},
        "spec": {"agent": AGENT, "prompt": "hello"},
    }


_AGENT = agent(AGENT, tenant=TENANTS[0], project=PROJECT)
# (method, path) -> a body the route accepts, for the seeded world.
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/tenants"): tenant("fuzzed"),
    ("put", "/api/v1/tenants/{name}"): tenant(TENANTS[0]),
    ("post", "/api/v1/projects"): project("fuzzed", tenant=TENANTS[0]),
    ("put", "/api/v1/projects/{name}"): project(PROJECT, tenant=TENANTS[0]),
    ("post", "/api/v1/agents"): agent("fuzzed", tenant=TENANTS[0], project=PROJECT),
    ("put", "/api/v1/agents/{name}"): _AGENT,
    ("post", "/api/v1/apply"): _AGENT,
    ("post", "/api/v1/secrets"): secret("fuzzed", TENANTS[0], PROJECT, key="value-654321"),
    ("put", "/api/v1/secrets/{name}"): secret(SECRET, TENANTS[0], PROJECT, key="value-654321"),
    ("post", "/api/v1/rolebindings"): _binding("fuzzed"),
    ("put", "/api/v1/rolebindings/{name}"): _binding("as-dev"),
    ("post", "/api/v1/tasks"): _task(),
    ("post", "/api/v1/tasks/{name}/steer"): {"message": "go on"},
    ("post", "/api/v1/runs/{run_id}/steer"): {"message": "go on"},
    ("post", "/api/v1/agents/{name}/scale"): {"replicas": 2},
    ("post", "/api/v1/users"): {"name": "fuzzed", "password": "fuzzed password 1234"},
    ("post", "/api/v1/serviceaccounts"): {"name": "fuzzed"},
    ("post", "/api/v1/auth/login"): {"username": DEVELOPER, "password": "a wrong password"},
}


def with_examples(document: dict[str, Any], world: World) -> dict[str, Any]:
    """A copy of ``document`` whose parameters prefer the seeded names and whose bodies have
    valid examples."""
    document = copy.deepcopy(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                names = world.names.get(_kind_of(path, parameter) or "", [])
                if names:
                    parameter["schema"] = {"anyOf": [{"enum": names}, parameter["schema"]]}
                    parameter["example"] = names[0]
                elif _unbounded_integer(parameter["schema"]):
                    parameter["schema"] = {"anyOf": [{"enum": HUGE}, parameter["schema"]]}
                    parameter["example"] = HUGE[0]  # sent once, by the examples phase
            body = BODIES.get((method, path))
            if body is not None:
                media = operation["requestBody"]["content"]["application/json"]
                media["example"] = body
    return document


def _unbounded_integer(schema: dict[str, Any]) -> bool:
    """An integer parameter with no documented maximum: its values reach the database."""
    branches = schema.get("anyOf", [schema])
    return any(b.get("type") == "integer" and "maximum" not in b for b in branches)


def _kind_of(path: str, parameter: dict[str, Any]) -> str | None:
    name = parameter["name"]
    if parameter["in"] == "query":
        return NAME_BY_QUERY.get(name)
    if parameter["in"] != "path":
        return None
    if name == "name":
        parts = path.split("/")
        collection = parts[parts.index("{name}") - 1]
        return NAME_BY_COLLECTION.get(collection)
    return name  # run_id, instance_id, key_id
