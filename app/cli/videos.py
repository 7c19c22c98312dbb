"""`flask videos enqueue-queued` (the cron batch) and `flask videos render ID` (render now, in this process)."""
import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.cli.base import ServiceGroup
from app.extensions import db
from app.models import VideoProject
from app.services import video_render, videos


@click.group("videos", cls=ServiceGroup)
def videos_group():
    """Music video and interpolation video renders."""


@videos_group.command("enqueue-queued")
@click.option("--stale-after", default=600, show_default=True,
              help="Re-send renders whose worker has been silent this many seconds.")
@with_appcontext
def enqueue_queued(stale_after: int):
    """Send every project waiting for the batch (and every abandoned render) to the media queue."""
    due = videos.enqueue_due(stale_after)
    click.echo(f"enqueued {len(due)} video project(s)")


@videos_group.command("render")
@click.argument("project_id")
@with_appcontext
def render(project_id: str):
    """Render a queued project here, without a worker (for operators and debugging)."""
    project = db.session.scalar(select(VideoProject).where(VideoProject.public_id == videos._uuid(project_id,
                                                                                                  "project")))
    if project is None:
        raise click.ClickException("no such video project")
    while (outcome := video_render.render_step(project.id)) == "continue":
        click.echo(f"{project.frames_done}/{project.frames_total} frames")
    click.echo(f"render {outcome}")
