"""`flask models add|list|disable|enable|pull`: the models GPU hosts may serve, and fetching their weights."""
import click
from flask import current_app
from flask.cli import with_appcontext

from app.cli.base import ServiceGroup


def _pool():
    if not current_app.config["ATELIER"].serves_cpu:
        raise click.ClickException("this command needs the database: run it with server_type cpu or all")
    from app.services import gpu_pool

    return gpu_pool


@click.group("models", cls=ServiceGroup)
def models_group():
    """Manage the models the GPU pool serves."""


@models_group.command("add")
@click.argument("model_id")
@click.option("--name", "display_name", help="The name users see.")
@click.option("--kind", type=click.Choice(["image", "audio"]), default="image", show_default=True)
@click.option("--preload", is_flag=True, help="Hosts load it at start.")
@click.option("--price", "price_multiplier", type=float, default=1.0, show_default=True,
              help="Credit price multiplier.")
@with_appcontext
def add(model_id: str, display_name: str | None, kind: str, preload: bool, price_multiplier: float):
    """Register MODEL_ID (tiny, a Hugging Face id, or a local path)."""
    entry = _pool().add_model(model_id, display_name, kind, preload, price_multiplier)
    click.echo(f"added {entry.model_id}")


@models_group.command("list")
@with_appcontext
def list_models():
    """List registered models."""
    entries = _pool().list_models()
    if not entries:
        click.echo("no models; add one with `flask models add MODEL_ID`")
    for entry in entries:
        flags = ",".join(n for n, on in (("enabled", entry.enabled), ("preload", entry.preload)) if on) or "disabled"
        click.echo(f"{entry.model_id}\t{entry.display_name or '-'}\t{entry.kind}\tx{entry.price_multiplier:g}\t{flags}")


@models_group.command("disable")
@click.argument("model_id")
@with_appcontext
def disable(model_id: str):
    """Stop offering MODEL_ID."""
    _pool().set_model_enabled(model_id, False)
    click.echo(f"disabled {model_id}")


@models_group.command("enable")
@click.argument("model_id")
@with_appcontext
def enable(model_id: str):
    """Offer MODEL_ID again."""
    _pool().set_model_enabled(model_id, True)
    click.echo(f"enabled {model_id}")


@models_group.command("pull")
@click.argument("model_id")
@click.option("--revision", default=None, help="A branch, tag or commit of the repository.")
@with_appcontext
def pull(model_id: str, revision: str | None):
    """Download MODEL_ID's weights from the Hugging Face Hub into the local cache (with a progress bar)."""
    from app.services.model_download import HubUnreachable, pull_model

    if model_id == "tiny":
        click.echo("tiny is built in; nothing to download")
        return
    try:
        path = pull_model(model_id, current_app.config["ATELIER"].huggingface_token, revision)
    except HubUnreachable as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{model_id} is in the local cache at {path}")
