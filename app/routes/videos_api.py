"""Video projects and videos API: create from an audio, edit timed prompts, preview the schedule, render with
progress, cancel; watch, download and delete the videos."""
from __future__ import annotations

import io

from flask import Blueprint, request, send_file
from flask_login import current_user

from app.auth import api_login_required
from app.errors import ApiError
from app.extensions import db
from app.models import Audio, Video, VideoProject
from app.routes.api_common import json_body
from app.services import videos

bp = Blueprint("videos_api", __name__, url_prefix="/api/v1")


def video_json(video: Video) -> dict:
    """One rendered video."""
    return {
        "id": str(video.public_id), "title": video.title, "duration": video.duration_seconds, "fps": video.fps,
        "width": video.width, "height": video.height, "frames": video.frame_count, "has_audio": video.has_audio,
        "byte_size": video.byte_size, "url": f"/api/v1/videos/{video.public_id}/file",
        "download_url": f"/api/v1/videos/{video.public_id}/file?download=1",
        "poster_url": f"/api/v1/videos/{video.public_id}/poster", "created_at": video.created_at.isoformat(),
    }


def project_json(project: VideoProject) -> dict:
    """One project with its settings, state, progress and (when ready) its video."""
    clip = db.session.get(Audio, project.audio_id) if project.audio_id else None
    video = db.session.get(Video, project.video_id) if project.video_id else None
    return {
        "id": str(project.public_id), "kind": project.kind, "title": project.title, "status": project.status,
        "failure_reason": project.failure_reason, "audio_id": str(clip.public_id) if clip else None,
        "start_image_id": videos.start_image_public_id(project), "start_strength": project.start_strength,
        "prompts": project.prompts, "width": project.width, "height": project.height, "steps": project.steps,
        "fps": project.fps, "guidance": project.guidance, "smooth": project.smooth, "model": project.model_id,
        "duration": project.duration_seconds, "credits_quoted": project.credits_quoted,
        "credits_used": project.credits_used, "progress": videos.progress(project),
        "video": video_json(video) if video else None, "created_at": project.created_at.isoformat(),
        "finished_at": project.finished_at.isoformat() if project.finished_at else None,
    }


@bp.get("/video-projects")
@api_login_required
def list_projects():
    """My video projects, newest first."""
    return {"projects": [project_json(p) for p in videos.list_projects(current_user)]}


@bp.post("/video-projects")
@api_login_required
def create_project():
    """A draft project: audio_id + prompts (music) or kind 'interpolation' + duration + prompts; start_image_id
    starts the walk from a library image."""
    return project_json(videos.create_project(current_user, json_body())), 201


@bp.get("/video-projects/<public_id>")
@api_login_required
def get_project(public_id: str):
    """A project with its progress: frames done/total and an ETA."""
    return project_json(videos.find_project(current_user, public_id))


@bp.patch("/video-projects/<public_id>")
@api_login_required
def update_project(public_id: str):
    """Edit timed prompts or settings (not while rendering)."""
    return project_json(videos.update_project(current_user, public_id, json_body()))


@bp.delete("/video-projects/<public_id>")
@api_login_required
def delete_project(public_id: str):
    """Delete a project; a render in progress is cancelled first."""
    videos.delete_project(current_user, public_id)
    return "", 204


@bp.get("/video-projects/<public_id>/schedule")
@api_login_required
def schedule(public_id: str):
    """The audio-reactive frame → t curve, without rendering; ?smooth= previews another blend."""
    raw = request.args.get("smooth")
    try:
        smooth = float(raw) if raw is not None else None
    except ValueError:
        raise ApiError(422, "'smooth' must be a number between 0 and 1.", field="smooth") from None
    return videos.preview_schedule(current_user, public_id, smooth)


@bp.post("/video-projects/<public_id>/render")
@api_login_required
def render(public_id: str):
    """Hold the quoted credits and queue the render ({"batch": true} waits for the cron batch)."""
    data = json_body() if request.get_data() else {}
    batch = data.get("batch", False)
    if not isinstance(batch, bool):
        raise ApiError(422, "'batch' must be true or false.", field="batch")
    return project_json(videos.submit(current_user, public_id, batch=batch)), 202


@bp.post("/video-projects/<public_id>/cancel")
@api_login_required
def cancel(public_id: str):
    """Stop the render; delivered frames are charged, the rest of the hold released."""
    return project_json(videos.cancel(current_user, public_id))


@bp.get("/videos")
@api_login_required
def list_videos():
    """My rendered videos, newest first."""
    return {"videos": [video_json(v) for v in videos.list_videos(current_user)]}


@bp.get("/videos/<public_id>")
@api_login_required
def get_video(public_id: str):
    """One of my videos."""
    return video_json(videos.find_video(current_user, public_id))


@bp.get("/videos/<public_id>/file")
@api_login_required
def video_file(public_id: str):
    """The MP4 (range requests work); ?download=1 saves it as a file."""
    video = videos.find_video(current_user, public_id)
    data, mime_type = videos.read_video_file(video)
    return send_file(io.BytesIO(data), mimetype=mime_type, conditional=True, max_age=0,
                     as_attachment=request.args.get("download") == "1",
                     download_name=f"{(video.title or 'video')[:60]}.mp4")


@bp.get("/videos/<public_id>/poster")
@api_login_required
def video_poster(public_id: str):
    """The poster frame as PNG."""
    data, mime_type = videos.read_video_file(videos.find_video(current_user, public_id), poster=True)
    return send_file(io.BytesIO(data), mimetype=mime_type, max_age=0)


@bp.delete("/videos/<public_id>")
@api_login_required
def delete_video(public_id: str):
    """Delete one of my videos."""
    videos.delete_video(current_user, public_id)
    return "", 204
