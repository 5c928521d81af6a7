"""L5: controllers act on the world: idempotent loops that drive actual state towards the spec."""
