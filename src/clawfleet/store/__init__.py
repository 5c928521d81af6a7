"""L3: the state store. SQLAlchemy Core over SQLite (WAL, the default) or PostgreSQL (asyncpg).

One schema, one Alembic tree, the same test suite on both databases.
"""
