"""`flask db upgrade|downgrade|current`: alembic migrations against the configured database."""
import click
from flask import current_app
from flask.cli import with_appcontext

from app.services import migrations


@click.group("db")
def db_group():
    """Database migrations."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str):
    """Migrate the database up to REVISION (default: head)."""
    migrations.upgrade(current_app.config["SQLALCHEMY_DATABASE_URI"], revision)
    click.echo(f"database at {migrations.current(current_app.config['SQLALCHEMY_DATABASE_URI'])}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def downgrade(revision: str):
    """Migrate the database down to REVISION ('base' removes every table)."""
    migrations.downgrade(current_app.config["SQLALCHEMY_DATABASE_URI"], revision)
    click.echo(f"database at {migrations.current(current_app.config['SQLALCHEMY_DATABASE_URI']) or 'base'}")


@db_group.command("current")
@with_appcontext
def current():
    """Print the revision the database is at."""
    click.echo(migrations.current(current_app.config["SQLALCHEMY_DATABASE_URI"]) or "base")
