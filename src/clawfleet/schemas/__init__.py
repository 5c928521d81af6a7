"""L2: wire models (pydantic) for the REST API and, later, the runner protocol."""
