"""Which wire model validates which kind, and the union that ``apply`` accepts."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from clawfleet.schemas.agents import AgentIn
from clawfleet.schemas.rbac import RoleBindingIn
from clawfleet.schemas.secrets import SecretIn
from clawfleet.schemas.tenants import ProjectIn, TenantIn

ResourceIn = TenantIn | ProjectIn | RoleBindingIn | SecretIn | AgentIn

AnyResourceIn = Annotated[ResourceIn, Field(discriminator="kind")]

MODELS_BY_KIND: dict[str, type[ResourceIn]] = {
    "Tenant": TenantIn,
    "Project": ProjectIn,
    "RoleBinding": RoleBindingIn,
    "Secret": SecretIn,
    "Agent": AgentIn,
}
