"""Video projects: music videos (audio + timed prompts) and interpolation videos; submit, progress, cancel."""
from __future__ import annotations

import logging
import math
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.errors import ApiError
from app.extensions import db
from app.models import Audio, Image, User, Video, VideoProject, utcnow
from app.services import credits, media, pricing
from app.services.storage import get_storage

log = logging.getLogger(__name__)
EDITABLE = ("draft", "ready", "failed", "cancelled")
MAX_PROMPTS = 200
MAX_SEED = 2**63 - 1
MAX_FPS = 60
# How much of the first frame is made anew when a project starts from an image (1 would ignore the image).
DEFAULT_START_STRENGTH = 0.5
START_IMAGE_CHOICES = 60
# How long a render queued for the batch keeps its credits held before the cron sends it (the cron normally runs
# every few minutes; the project can be cancelled at any time, which releases the hold).
BATCH_HOLD_WINDOW = timedelta(hours=24)


def _settings():
    return current_app.config["ATELIER"]


def _uuid(public_id: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, f"No such {what}.") from None


# ------------------------------------------------------------------------------------------- validation

def _number(data: dict, name: str, default, low: float, high: float, integer: bool = False):
    value = data.get(name, default)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(422, f"'{name}' must be a number.", field=name)
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ApiError(422, f"'{name}' must be a whole number.", field=name)
        value = int(value)
    if not low <= value <= high:
        raise ApiError(422, f"'{name}' must be between {low:g} and {high:g}.", field=name)
    return value


def _size(data: dict, name: str, default: int) -> int:
    value = _number(data, name, default, 64, 2048, integer=True)
    if value % 8:
        raise ApiError(422, f"'{name}' must be a multiple of 8.", field=name)
    return value


def check_prompts(raw: Any, duration: float) -> list[dict]:
    """Timed prompts [{"at", "prompt", "seed"}]: the first at 0, strictly increasing times inside the video."""
    if not isinstance(raw, list) or not raw:
        raise ApiError(422, "'prompts' must be a non-empty list of {at, prompt, seed}.", field="prompts")
    if len(raw) > MAX_PROMPTS:
        raise ApiError(422, f"At most {MAX_PROMPTS} prompts.", field="prompts")
    limit = _settings().gpu_max_prompt_chars
    prompts, previous = [], None
    for index, item in enumerate(raw):
        where = f"prompts[{index}]"
        if not isinstance(item, dict):
            raise ApiError(422, f"{where} must be an object with at, prompt and seed.", field="prompts")
        at = item.get("at", None if index else 0)
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 <= at <= duration:
            raise ApiError(422, f"{where}.at must be a time in seconds between 0 and the video's end "
                                f"({duration:g} s).", field="prompts")
        text = item.get("prompt")
        if not isinstance(text, str) or not text.strip() or len(text) > limit or "\x00" in text:
            raise ApiError(422, f"{where}.prompt must be text of 1 to {limit} characters.", field="prompts")
        seed = item.get("seed", index)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ApiError(422, f"{where}.seed must be a whole number ≥ 0.", field="prompts")
        if index == 0 and at != 0:
            raise ApiError(422, "The first prompt must be at 0 seconds.", field="prompts")
        if previous is not None and at <= previous:
            raise ApiError(422, f"{where}.at must be later than the prompt before it.", field="prompts")
        previous = at
        prompts.append({"at": float(at), "prompt": text.strip(), "seed": seed})
    return prompts


def _apply_start_image(user: User, project: VideoProject, data: dict) -> None:
    """start_image_id: a library image the user may see (own, published or template), or null for none."""
    if "start_image_id" in data:
        raw = data["start_image_id"]
        if raw is None:
            project.start_image_id = None
        elif not isinstance(raw, str) or "\x00" in raw:
            raise ApiError(422, "'start_image_id' must be the id of an image in your library, or null.",
                           field="start_image_id")
        else:
            image = media.find_visible_image(raw, user)  # 404 for images the user may not see
            if not image.storage_key:
                raise ApiError(422, "That image has no stored file.", field="start_image_id")
            project.start_image_id = image.id
    strength = project.start_strength if project.start_strength is not None else DEFAULT_START_STRENGTH
    project.start_strength = float(_number(data, "start_strength", strength, 0.05, 1))
    if project.start_image_id is not None and int(project.steps * project.start_strength) < 1:
        raise ApiError(422, f"steps x start_strength must be at least 1 denoising step ({project.steps} x "
                            f"{project.start_strength:g}); raise one of them.", field="start_strength")


def start_image_public_id(project: VideoProject) -> str | None:
    """The public id of the project's start image, if it has one."""
    if project.start_image_id is None:
        return None
    image = db.session.get(Image, project.start_image_id)
    return str(image.public_id) if image else None


def start_image_choices(user: User, project: VideoProject) -> list[Image]:
    """Images the page offers as the start: the user's newest, plus the current one when it is not among them."""
    images = list(db.session.scalars(select(Image).where(Image.user_id == user.id, Image.storage_key.is_not(None))
                                     .order_by(Image.created_at.desc(), Image.id.desc())
                                     .limit(START_IMAGE_CHOICES)))
    current = db.session.get(Image, project.start_image_id) if project.start_image_id else None
    if current is not None and current not in images:
        images.insert(0, current)
    return images


def _apply_settings(user: User, project: VideoProject, data: dict) -> None:
    settings = _settings()
    if "title" in data:
        title = data["title"]
        if title is not None and (not isinstance(title, str) or "\x00" in title):
            raise ApiError(422, "'title' must be text (without NUL characters).", field="title")
        project.title = (title or "").strip()[:200] or None
    project.width = _size(data, "width", project.width or 512)
    project.height = _size(data, "height", project.height or 512)
    if project.width * project.height > settings.gpu_max_pixels:
        raise ApiError(422, f"width x height must be at most {settings.gpu_max_pixels} pixels.", field="width")
    project.steps = _number(data, "steps", project.steps or 20, 1, settings.gpu_max_steps, integer=True)
    project.fps = _number(data, "fps", project.fps or settings.video_generation_fps, 1, MAX_FPS, integer=True)
    project.guidance = float(_number(data, "guidance", project.guidance if project.guidance is not None else 7.5,
                                     0, settings.gpu_max_guidance))
    project.smooth = float(_number(data, "smooth", project.smooth or 0.0, 0, 1))
    model = data.get("model", project.model_id or (settings.gpu_models[0] if settings.gpu_models else "tiny"))
    if not isinstance(model, str) or "\x00" in model:
        raise ApiError(422, "'model' must be a model id.", field="model")
    pricing.model_multiplier(model)  # 422 for unknown or disabled models
    project.model_id = model
    if project.kind == "interpolation":
        project.duration_seconds = float(_number(data, "duration", project.duration_seconds or 4, 0.25,
                                                 settings.video_max_seconds))
    _apply_start_image(user, project, data)
    if "prompts" in data or not project.prompts:
        project.prompts = check_prompts(data.get("prompts"), project.duration_seconds or 0)
    elif any(p["at"] > (project.duration_seconds or 0) for p in project.prompts):
        raise ApiError(422, "A prompt is timed after the end of the video.", field="prompts")


def _own_audio(user: User, public_id: Any) -> Audio:
    if not isinstance(public_id, str):
        raise ApiError(422, "'audio_id' must be the id of one of your audio clips.", field="audio_id")
    audio = db.session.scalar(select(Audio).where(Audio.public_id == _uuid(public_id, "audio clip"),
                                                  Audio.user_id == user.id))
    if audio is None:
        raise ApiError(404, "No such audio clip.")
    if audio.status != "ready":
        raise ApiError(409, "That audio clip is not ready yet.", code="audio_not_ready")
    return audio


# ------------------------------------------------------------------------------------------ projects

def create_project(user: User, data: dict) -> VideoProject:
    """A draft music video (audio_id) or interpolation video (kind "interpolation", duration); either may start
    from a library image (start_image_id)."""
    kind = data.get("kind", "music")
    if kind not in ("music", "interpolation"):
        raise ApiError(422, "'kind' must be 'music' or 'interpolation'.", field="kind")
    project = VideoProject(user_id=user.id, kind=kind, status="draft", prompts=[])
    if kind == "music":
        audio = _own_audio(user, data.get("audio_id"))
        project.audio_id = audio.id
        project.duration_seconds = min(audio.duration_seconds or 0, float(_settings().video_max_seconds))
        if not data.get("title"):
            project.title = audio.title
    _apply_settings(user, project, data)
    db.session.add(project)
    db.session.commit()
    return project


def list_projects(user: User) -> list[VideoProject]:
    """The user's projects, newest first."""
    return list(db.session.scalars(select(VideoProject).where(VideoProject.user_id == user.id)
                                   .order_by(VideoProject.created_at.desc(), VideoProject.id.desc())))


def find_project(user: User, public_id: str, lock: bool = False) -> VideoProject:
    """The user's own project; 404 for anyone else's."""
    query = select(VideoProject).where(VideoProject.public_id == _uuid(public_id, "video project"),
                                       VideoProject.user_id == user.id)
    if lock:
        query = query.with_for_update()
    project = db.session.scalar(query.execution_options(populate_existing=True))
    if project is None:
        raise ApiError(404, "No such video project.")
    return project


def update_project(user: User, public_id: str, data: dict) -> VideoProject:
    """Change prompts or settings while the project is not queued or rendering."""
    project = find_project(user, public_id, lock=True)
    if project.status not in EDITABLE:
        raise ApiError(409, "The project is rendering; cancel it first.", code="project_busy")
    _apply_settings(user, project, data)
    db.session.commit()
    return project


def delete_project(user: User, public_id: str) -> None:
    """Delete a project (cancelling its render first); its finished video stays in the library."""
    project = find_project(user, public_id)
    if project.status in ("queued", "rendering"):
        cancel(user, public_id)
        project = find_project(user, public_id)
    from app.services import video_render

    video_render.delete_chunks(project)
    db.session.delete(project)
    db.session.commit()


def frame_count(project: VideoProject) -> int:
    """Frames the project renders: its duration times its fps."""
    return max(1, int(round((project.duration_seconds or 0) * project.fps)))


def compute_schedule(project: VideoProject) -> list[list]:
    """[from prompt, to prompt, t] per frame, following the audio's percussive energy."""
    from app.services import audio as audio_service
    from app.services import schedule

    frames = frame_count(project)
    samples = None
    if project.kind == "music" and project.audio_id is not None:
        clip = db.session.get(Audio, project.audio_id)
        if clip is None or not clip.storage_key:
            raise ApiError(409, "The project's audio clip is gone.", code="audio_missing")
        samples = audio_service.load_samples(clip, schedule.ANALYSIS_RATE)
    energies = schedule.frame_energies(samples, schedule.ANALYSIS_RATE, project.fps, frames)
    return schedule.build_schedule(project.prompts, project.fps, frames, project.smooth, energies)


def preview_schedule(user: User, public_id: str, smooth: float | None = None) -> dict:
    """The frame → t curve (and times) without rendering, for the page to draw."""
    project = find_project(user, public_id)
    if smooth is not None:
        project.smooth = float(_number({"smooth": smooth}, "smooth", 0, 0, 1))
    rows = compute_schedule(project)
    db.session.rollback()  # a preview with another smooth value changes nothing
    return {"fps": project.fps, "frames": len(rows),
            "points": [{"frame": i, "time": round(i / project.fps, 4), "segment": row[0], "t": row[2],
                        "position": round(row[0] + row[2] if row[0] != row[1] else row[0], 6)}
                       for i, row in enumerate(rows)]}


def quote(project: VideoProject) -> int:
    """Credits a render of this project costs."""
    return pricing.video_cost(project.model_id, frame_count(project) / project.fps)


def submit(user: User, public_id: str, batch: bool = False) -> VideoProject:
    """Quote, hold the credits, fix the schedule and queue the render (now, or for the cron batch)."""
    project = find_project(user, public_id)
    if project.status not in EDITABLE:
        raise ApiError(409, "The project is already queued or rendering.", code="project_busy")
    from app.services import video_render

    video_render.delete_chunks(project)
    schedule_rows = compute_schedule(project)
    cost = quote(project)
    entry = credits.hold(user, cost, idempotency_key=f"video-render-{uuid.uuid4().hex}",
                         memo=f"video project {project.public_id}",
                         expires_at=utcnow() + BATCH_HOLD_WINDOW if batch else None)
    try:
        project = find_project(user, public_id, lock=True)
        if project.status not in EDITABLE:
            raise ApiError(409, "The project is already queued or rendering.", code="project_busy")
        now = utcnow()
        project.status, project.hold_id, project.schedule = "queued", entry.id, schedule_rows
        project.frames_total, project.frames_done = len(schedule_rows), 0
        project.chunk_frames = _settings().video_chunk_frames
        project.credits_quoted, project.credits_used = cost, 0
        project.render_attempts, project.render_fps, project.lease_until = 0, None, None
        project.failure_reason, project.finished_at, project.started_at = None, None, None
        project.notified_at, project.video_id = None, None
        project.enqueued_at = None if batch else now
        db.session.commit()
    except BaseException:
        db.session.rollback()
        credits.release(entry.id, memo="render not queued")
        raise
    if not batch:
        enqueue(project.id)
    return project


def enqueue(project_id: int) -> None:
    """Send the render task to the media queue."""
    from app.tasks.media import render_video

    render_video.delay(project_id)


def enqueue_due(stale_after_seconds: int = 600) -> list[int]:
    """Queue every queued project not sent yet (the cron batch) and re-send renders whose worker vanished."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_seconds)
    rows = db.session.scalars(select(VideoProject).where(VideoProject.status.in_(("queued", "rendering")))
                              .with_for_update(skip_locked=True)).all()
    due, holds = [], []
    for project in rows:
        never_sent = project.status == "queued" and (project.enqueued_at is None or project.enqueued_at < stale)
        abandoned = project.status == "rendering" and (project.lease_until is None or project.lease_until < stale)
        if never_sent or abandoned:
            project.enqueued_at = now
            due.append(project.id)
            if project.hold_id is not None:
                holds.append(project.hold_id)
    db.session.commit()
    for hold_id in holds:  # the render waits in the media queue until its first heartbeat extends it again
        keep_hold(hold_id)
    for project_id in due:
        enqueue(project_id)
    return due


def keep_hold(hold_id: int) -> None:
    """Move a live render's hold deadline hold_timeout_minutes ahead, so the sweeper leaves it alone."""
    try:
        credits.extend_hold(hold_id, utcnow() + timedelta(minutes=_settings().hold_timeout_minutes))
    except Exception:  # bookkeeping must not stop a render; settle() copes with a hold released meanwhile
        log.exception("could not extend hold %s", hold_id)


def cancel(user: User, public_id: str) -> VideoProject:
    """Stop a queued or rendering project; frames already delivered are charged, the rest released."""
    project = find_project(user, public_id, lock=True)
    if project.status == "cancelled":
        db.session.rollback()
        return project
    if project.status not in ("queued", "rendering"):
        raise ApiError(409, f"The project is {project.status}; only a queued or rendering project can be "
                            "cancelled.", code="project_not_rendering")
    project.status, project.finished_at, project.lease_until = "cancelled", utcnow(), None
    db.session.commit()
    settle(project)
    return project


def settle(project: VideoProject) -> None:
    """Settle the render's hold once: ready captures the quote, cancelled what was delivered, failed nothing."""
    if project.hold_id is None:
        return
    amount = {"ready": project.credits_quoted, "cancelled": project.credits_used}.get(project.status, 0)
    amount = min(amount, project.credits_quoted)
    try:
        credits.capture(project.hold_id, amount, idempotency_key=f"video-settle-{project.hold_id}",
                        memo=f"video project {project.public_id}")
    except ApiError as exc:
        log.warning("could not settle hold %s of project %s: %s", project.hold_id, project.id, exc.message)
        if exc.code == "hold_released" and amount:
            _charge_after_release(project, amount)


def _charge_after_release(project: VideoProject, amount: int) -> None:
    """The hold passed its deadline without a heartbeat (every worker was down that long) and was swept.

    Charge the delivered work once (the idempotency key makes any repeat a replay or a refused conflict), and
    never more than the user has now: what is missing is given, the video stands.
    """
    available = credits.balance(project.user_id)["balance"]
    charge = min(amount, available)
    if charge < amount:
        log.warning("project %s: hold %s was released and only %s of %s credits are left to charge",
                    project.id, project.hold_id, charge, amount)
    if charge <= 0:
        return
    try:
        credits.spend(project.user_id, charge, idempotency_key=f"video-charge-{project.hold_id}",
                      memo=f"video project {project.public_id} (hold released before it was settled)")
    except ApiError as exc:  # spent meanwhile (402) or already charged another amount (409): charge nothing more
        log.warning("could not charge project %s after its hold was released: %s", project.id, exc.message)


def credits_for_frames(project: VideoProject, frames_done: int) -> int:
    """The part of the quote that `frames_done` frames are worth, rounded up."""
    if not project.frames_total:
        return 0
    return min(project.credits_quoted, math.ceil(project.credits_quoted * frames_done / project.frames_total))


def progress(project: VideoProject) -> dict:
    """Frames done/total, percent and an ETA from the current render speed."""
    remaining = project.frames_total - project.frames_done
    eta = None
    if project.status == "rendering" and project.render_fps:
        eta = round(remaining / project.render_fps, 1)
    elif project.status == "ready":
        eta = 0
    percent = round(100 * project.frames_done / project.frames_total, 1) if project.frames_total else 0
    return {"frames_done": project.frames_done, "frames_total": project.frames_total, "percent": percent,
            "eta_seconds": eta, "frames_per_second": project.render_fps}


# -------------------------------------------------------------------------------------------- videos

def find_video(user: User, public_id: str) -> Video:
    """The user's own video; 404 otherwise."""
    video = db.session.scalar(select(Video).where(Video.public_id == _uuid(public_id, "video"),
                                                  Video.user_id == user.id))
    if video is None:
        raise ApiError(404, "No such video.")
    return video


def list_videos(user: User) -> list[Video]:
    """The user's videos, newest first."""
    return list(db.session.scalars(select(Video).where(Video.user_id == user.id)
                                   .order_by(Video.created_at.desc(), Video.id.desc())))


def read_video_file(video: Video, poster: bool = False) -> tuple[bytes, str]:
    """The MP4 (or its poster PNG) bytes and type."""
    key = video.poster_key if poster else video.storage_key
    if not key:
        raise ApiError(404, "This video has no stored file.")
    try:
        return get_storage().get(key), "image/png" if poster else "video/mp4"
    except FileNotFoundError:
        raise ApiError(404, "This video's file is missing from storage.") from None


def delete_video(user: User, public_id: str) -> None:
    """Delete a video and its files."""
    video = find_video(user, public_id)
    keys = [video.storage_key, video.poster_key]
    db.session.delete(video)
    db.session.commit()
    storage = get_storage()
    for key in keys:
        if key:
            try:
                storage.delete(key)
            except Exception:
                log.exception("could not delete %s", key)
