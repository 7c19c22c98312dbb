"""Pages for audio clips and video projects; the page scripts drive the JSON API with the session cookie."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from app.services import audio, videos

bp = Blueprint("media_job_pages", __name__)


@bp.get("/audio")
@login_required
def audio_page():
    """My clips: upload, generate, play, share, delete."""
    return render_template("media/audio.html", clips=audio.list_audio(current_user))


@bp.get("/audio/<public_id>")
@login_required
def audio_detail(public_id: str):
    """One clip (the link in the ready email)."""
    return render_template("media/audio.html", clips=[audio.find_audio(current_user, public_id)])


@bp.get("/videos")
@login_required
def videos_page():
    """My video projects (create one from a clip) and my rendered videos."""
    return render_template("media/videos.html", projects=videos.list_projects(current_user),
                           videos=videos.list_videos(current_user),
                           clips=[c for c in audio.list_audio(current_user) if c.status == "ready"])


@bp.get("/videos/projects/<public_id>")
@login_required
def project_page(public_id: str):
    """Edit timed prompts and the start image, preview the schedule, render with a live progress bar, watch."""
    project = videos.find_project(current_user, public_id)
    return render_template("media/project.html", project=project,
                           start_images=videos.start_image_choices(current_user, project),
                           start_image_id=videos.start_image_public_id(project))
