"""`flask media add-template PATH` / `remove-template ID`: admin starter images anyone can open and edit from."""
import os

import click
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup
from app.services import media


@click.group("media", cls=ServiceGroup)
def media_group():
    """The media library."""


@media_group.command("add-template")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--title", help="Title shown in the template list (default: the file name).")
@with_appcontext
def add_template(path: str, title: str | None):
    """Store the PNG, JPEG or WebP at PATH as a template image."""
    with open(path, "rb") as handle:
        data = handle.read()
    image = media.store_template(data, title or os.path.splitext(os.path.basename(path))[0])
    click.echo(f"template {image.public_id} ({image.width}x{image.height}) added")


@media_group.command("remove-template")
@click.argument("template_id")
@with_appcontext
def remove_template(template_id: str):
    """Delete the template TEMPLATE_ID (its image id) and its files."""
    media.delete_template(template_id)
    click.echo(f"template {template_id} removed")
