"""L5: the REST API (FastAPI). Records intent through services; never acts on the world."""
