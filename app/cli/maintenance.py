"""`flask maintenance purge-idempotency`: housekeeping of stored rows that only matter for a while (and from cron)."""
import click
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.services import idempotency


@click.group("maintenance", cls=ServiceGroup)
def maintenance_group():
    """Purge rows kept only for a limited time."""


@maintenance_group.command("purge-idempotency")
@click.option("--older-than-hours", "hours", type=click.IntRange(min=1), default=24, show_default=True,
              help="Delete stored Idempotency-Key responses older than this; a retry after that runs again.")
@with_appcontext
def purge_idempotency(hours: int):
    """Delete stored responses to Idempotency-Key requests older than --older-than-hours."""
    click.echo(f"purged {idempotency.purge(hours)} stored idempotent responses older than {hours} hours")
