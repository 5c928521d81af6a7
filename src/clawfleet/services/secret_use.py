"""Who may hand a secret to a program: the rule an Agent's ``secretEnv`` is admitted by.

An agent's program gets the values of every secret its ``secretEnv`` names, and may print them
in any shape (reversed or encoded, which redaction does not catch). So naming a secret there is
reading it, and needs ``Verb.USE`` on Secret in the agent's project: admins and tenant admins
hold it, operators (who may create agents), developers and viewers do not. A secret may widen
that for named agents of its project with ``spec.allowedAgents`` (``"*"``: every agent), which
only whoever may write the secret can set. Allowing an agent trusts everyone who may change that
agent, or create one of that name: they choose the program that gets the values.

The rule runs when an Agent is created, and when it is updated with a spec that differs from the
stored one in more than ``replicas`` and ``state``: scaling, sleeping and waking hand nothing new
to any program, so an operator may still run an agent a tenant admin set up, and re-applying it
unchanged passes. A tenant admin may name a secret that does not exist yet; anyone else needs
the secret to exist and to allow the agent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.core.errors import Forbidden
from clawfleet.domain.resources import ResourceKey, ResourceRecord
from clawfleet.schemas.secrets import EVERY_AGENT
from clawfleet.services.context import RequestContext
from clawfleet.services.policy import Verb, permits
from clawfleet.services.resource_hooks import Desired
from clawfleet.store.repositories.resources import ResourceRepository

SCALING_FIELDS = frozenset({"replicas", "state"})


def _program(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of an Agent spec that decides what runs with the secrets: all but scaling."""
    return {field: value for field, value in spec.items() if field not in SCALING_FIELDS}


async def check_secret_use(
    conn: AsyncConnection,
    ctx: RequestContext,
    current: ResourceRecord | None,
    desired: Desired,
) -> None:
    """Raise Forbidden, naming ``spec.secretEnv.NAME``, unless ``ctx`` may hand every secret the
    Agent ``desired`` names to its program (``current``: the stored Agent, None on create)."""
    refs: dict[str, dict[str, str]] = desired.spec.get("secretEnv") or {}
    if not refs or (current is not None and _program(current.spec) == _program(desired.spec)):
        return
    key = desired.key
    if permits(ctx.principal, Verb.USE, "Secret", key.tenant, key.project):
        return
    repo = ResourceRepository(conn)
    for env_name, ref in sorted(refs.items()):
        secret = await repo.get(ResourceKey("Secret", key.tenant, key.project, ref["secret"]))
        allowed = secret.spec.get("allowedAgents", []) if secret is not None else []
        if key.name not in allowed and EVERY_AGENT not in allowed:
            raise _refusal(ctx, key, env_name, ref["secret"], exists=secret is not None)


def _refusal(
    ctx: RequestContext, agent: ResourceKey, env_name: str, secret: str, *, exists: bool
) -> Forbidden:
    why = "does not list it in spec.allowedAgents" if exists else "does not exist yet"
    return Forbidden(
        f"spec.secretEnv.{env_name}: {ctx.principal.name} may not hand secret {secret!r} to "
        f"the program of agent {agent.name!r} (that reads its values), and the secret {why}; "
        f"ask a tenant admin of {agent.tenant!r} to apply the agent, or to add {agent.name!r} "
        f"to the spec.allowedAgents of secret {secret!r} in project {agent.project!r}"
    )
