"""Alembic is the only schema path: the migrated database matches the ORM tables exactly."""

from __future__ import annotations


def test_migrations_match_the_orm(stack):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import core.tables  # noqa: F401  (registers every table)
    from core.db import Base, get_engine

    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"render_as_batch": True}), Base.metadata)
    assert diff == []
