"""Repositories: one module per stored concept, each a thin class over an open connection."""
