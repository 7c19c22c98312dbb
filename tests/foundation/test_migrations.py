"""Migrations: one head, PostgreSQL schema equals the models, down to base and back, SQLite too."""
from __future__ import annotations

import uuid

import psycopg2
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.config import normalize_database_url
from app.models import Base
from app.services import migrations
from tests.conftest import PG_ADMIN_DSN


def _fresh_pg_database() -> tuple[str, callable]:
    name = f"atelier_mig_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN_DSN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"{PG_ADMIN_DSN.rpartition('/')[0]}/{name}", drop


def _differences(url: str) -> list:
    engine = create_engine(normalize_database_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_there_is_exactly_one_head():
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_on_empty_postgres_matches_models_and_downgrades_to_base():
    url, drop = _fresh_pg_database()
    try:
        migrations.upgrade(url)
        assert _differences(url) == []
        migrations.downgrade(url, "base")
        engine = create_engine(normalize_database_url(url))
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        engine.dispose()
        migrations.upgrade(url)  # and back up again, as a redeploy would
        assert migrations.current(url) is not None
    finally:
        drop()


def test_sqlite_upgrade_matches_models_and_downgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'atelier.db'}"
    migrations.upgrade(url)
    assert _differences(url) == []
    assert set(Base.metadata.tables) <= set(inspect(create_engine(url)).get_table_names())
    migrations.downgrade(url, "base")
    assert set(inspect(create_engine(url)).get_table_names()) == {"alembic_version"}
