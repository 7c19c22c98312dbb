"""Rendering a video project: chunks of frames rendered concurrently through the GPU proxy, stored one by one,
resumed from the first missing chunk, then encoded to MP4 with the audio and stored as a library video.

One run holds the project's lease (renewed at each heartbeat) so two workers never render one project at once;
a run works for at most video_render_slice_seconds and then hands over to a fresh task. The heartbeat also moves
the credit hold's deadline forward, so the stale-hold sweeper never releases the hold of a render still working.
"""
from __future__ import annotations

import hashlib
import io
import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from flask import current_app
from sqlalchemy import or_, select, update

from app.errors import ApiError
from app.extensions import db
from app.models import Audio, Image, User, Video, VideoProject, utcnow
from app.services import media, notify, videos
from app.services.gpu_client import GpuClient, client_from_settings
from app.services.storage import get_storage

log = logging.getLogger(__name__)
P = VideoProject
RETRYABLE = (502, 503, 504)
CHUNK_TRIES = 3


class PoolUnavailable(RuntimeError):
    """The GPU pool stayed busy or unreachable; the task retries later with backoff."""


class RenderFailed(RuntimeError):
    """The render cannot succeed (bad input for the GPU, missing audio); the project fails with this reason."""


@dataclass
class Chunk:
    """Consecutive frames of one walk between two prompts: one interpolation request."""

    index: int
    source: int
    target: int
    start: int
    ts: list[float]

    @property
    def frames(self) -> int:
        """How many frames the chunk holds."""
        return len(self.ts)


def _settings():
    return current_app.config["ATELIER"]


def plan_chunks(project: VideoProject) -> list[Chunk]:
    """Cut the schedule into chunks of at most chunk_frames frames that never cross a prompt boundary."""
    chunks: list[Chunk] = []
    size = project.chunk_frames or _settings().video_chunk_frames
    for frame, (source, target, t) in enumerate(project.schedule or []):
        last = chunks[-1] if chunks else None
        if last is None or (last.source, last.target) != (source, target) or last.frames >= size:
            chunks.append(Chunk(len(chunks), source, target, frame, []))
            last = chunks[-1]
        last.ts.append(float(t))
    return chunks


def chunk_key(project: VideoProject, index: int) -> str:
    """Where a rendered chunk's frames are stored."""
    return f"renders/{project.public_id}/chunk-{index:05d}.npz"


def delete_chunks(project: VideoProject) -> None:
    """Remove the stored chunks of the project's last render."""
    storage = get_storage()
    for chunk in plan_chunks(project):
        try:
            storage.delete(chunk_key(project, chunk.index))
        except Exception:
            log.exception("could not delete chunk %s of project %s", chunk.index, project.id)


def _encode_frames(frames: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=np.stack(frames))
    return buffer.getvalue()


def _decode_frames(data: bytes) -> np.ndarray:
    with np.load(io.BytesIO(data)) as archive:
        return archive["frames"]


def png_to_array(data: str) -> np.ndarray:
    """A base64 PNG from the GPU API as an RGB uint8 array."""
    import base64

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return np.asarray(image.convert("RGB"))


def start_image_png(project: VideoProject) -> str | None:
    """The project's start image fitted (centre-cropped) to the video's size, as base64 PNG; None without one."""
    import base64

    from PIL import Image as PILImage
    from PIL import ImageOps

    if project.start_image_id is None:
        return None
    image = db.session.get(Image, project.start_image_id)
    owner = db.session.get(User, project.user_id)
    if image is None or not image.storage_key or not media.can_view(image, owner):
        raise RenderFailed("the project's start image is no longer in your library")
    try:
        data = get_storage().get(image.storage_key)
    except FileNotFoundError:
        raise RenderFailed("the project's start image file is missing from storage") from None
    with PILImage.open(io.BytesIO(data)) as source:
        fitted = ImageOps.fit(source.convert("RGB"), (project.width, project.height), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    fitted.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _request(project: VideoProject, chunk: Chunk, start_png: str | None = None) -> dict:
    a, b = project.prompts[chunk.source], project.prompts[chunk.target]
    payload = {"model": project.model_id, "prompt_a": a["prompt"], "seed_a": a["seed"], "prompt_b": b["prompt"],
               "seed_b": b["seed"], "t": chunk.ts, "width": project.width, "height": project.height,
               "steps": project.steps, "guidance": project.guidance}
    if start_png is not None and chunk.source == 0:  # the walk from the first prompt starts at the image
        payload["image_a"] = start_png
        payload["strength_a"] = project.start_strength or videos.DEFAULT_START_STRENGTH
    if project.scheduler:
        payload["scheduler"] = project.scheduler
    return payload


def render_chunk(client: GpuClient, storage, payload: dict, key: str) -> int:
    """One interpolation request (a few quick retries on a busy pool), its frames stored under `key`."""
    delay = 0.5
    for attempt in range(CHUNK_TRIES):
        try:
            answer = client.generate("interpolate", payload)
            break
        except ApiError as exc:
            if exc.status not in RETRYABLE:
                raise RenderFailed(f"the GPU refused a chunk: {exc.message}") from exc
            if attempt == CHUNK_TRIES - 1:
                raise PoolUnavailable(exc.message) from exc
            time.sleep(delay)
            delay *= 2
    frames = [png_to_array(item["png_base64"]) for item in answer["images"]]
    if len(frames) != len(payload["t"]):
        raise RenderFailed(f"the GPU returned {len(frames)} frames for {len(payload['t'])}")
    storage.put(key, _encode_frames(frames), "application/octet-stream")
    return len(frames)


# ------------------------------------------------------------------------------------------ the run

def _acquire(project_id: int) -> VideoProject | None:
    """Take the project's lease (one render at a time); None when it is not renderable or someone holds it."""
    now = utcnow()
    result = db.session.execute(
        update(P).where(P.id == project_id, P.status.in_(("queued", "rendering")),
                        or_(P.lease_until.is_(None), P.lease_until < now))
        .values(status="rendering", lease_until=now + timedelta(seconds=_settings().video_render_lease_seconds),
                render_attempts=P.render_attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        return None
    project = db.session.get(P, project_id, populate_existing=True)
    if project.started_at is None:
        project.started_at = now
        db.session.commit()
    return project


def _heartbeat(project: VideoProject, frames_done: int, rate: float | None, extend_hold: bool = False) -> bool:
    """Record progress and renew the lease (and the hold, if asked); False when the project stopped rendering."""
    values = {"frames_done": frames_done, "credits_used": videos.credits_for_frames(project, frames_done),
              "lease_until": utcnow() + timedelta(seconds=_settings().video_render_lease_seconds)}
    if rate:
        # This run made progress: only runs that die without any count towards the redelivery cap.
        values["render_fps"], values["render_attempts"] = round(rate, 3), 1
    result = db.session.execute(update(P).where(P.id == project.id, P.status == "rendering").values(**values)
                                .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        return False
    if extend_hold and project.hold_id is not None:
        videos.keep_hold(project.hold_id)
    return True


def release_lease(project_id: int, ended_on_purpose: bool = True) -> None:
    """Give the lease back; a run that ended on purpose also restarts the attempts count."""
    db.session.rollback()
    values = {"lease_until": None, **({"render_attempts": 0} if ended_on_purpose else {})}
    db.session.execute(update(P).where(P.id == project_id, P.status == "rendering")
                       .values(**values).execution_options(synchronize_session=False))
    db.session.commit()


def render_step(project_id: int) -> str:
    """Render missing chunks for up to one slice; returns done, continue, busy or stopped.

    Raises PoolUnavailable when the GPU pool stays busy (the task retries with backoff); fails the project
    itself for errors a retry cannot fix.
    """
    settings = _settings()
    project = db.session.get(P, project_id)
    if project is None:
        return "stopped"
    if project.status == "ready":
        videos.settle(project)  # a run that died between finishing and settling
        _notify_once(project)
        return "done"
    if project.status not in ("queued", "rendering"):
        return "stopped"
    project = _acquire(project_id)
    if project is None:
        return "busy"
    if project.render_attempts > settings.celery_max_redeliveries:
        fail(project_id, f"the render died {project.render_attempts - 1} times in a row; giving up")
        return "stopped"
    try:
        outcome = _render_chunks(project, settings)
    except PoolUnavailable:
        release_lease(project_id)
        raise
    except RenderFailed as exc:
        fail(project_id, str(exc))
        return "stopped"
    if outcome == "complete":
        try:
            finish(project_id)
        except RenderFailed as exc:
            fail(project_id, str(exc))
            return "stopped"
        return "done"
    if outcome == "continue":
        release_lease(project_id)
    return outcome


def _render_chunks(project: VideoProject, settings) -> str:
    storage = get_storage()
    chunks = plan_chunks(project)
    done = [c for c in chunks if storage.exists(chunk_key(project, c.index))]
    frames_done = sum(c.frames for c in done)
    missing = [c for c in chunks if c not in done]
    if not _heartbeat(project, frames_done, None, extend_hold=True):
        return "stopped"
    if not missing:
        return "complete"
    start_png = start_image_png(project) if any(c.source == 0 for c in missing) else None
    client = client_from_settings(settings)
    started, rendered = time.monotonic(), 0
    deadline = started + settings.video_render_slice_seconds
    heartbeat = max(0.5, settings.video_render_lease_seconds / 3)
    # The hold is extended a full hold_timeout_minutes ahead every third of that, not at every heartbeat.
    extend_every = max(heartbeat, settings.hold_timeout_minutes * 60 / 3)
    next_extend = started + extend_every
    queue = iter(missing)
    error: Exception | None = None
    stopped = False
    with ThreadPoolExecutor(max_workers=settings.video_render_concurrency, thread_name_prefix="chunk") as pool:
        in_flight: dict = {}

        def fill() -> None:
            while len(in_flight) < settings.video_render_concurrency and time.monotonic() < deadline:
                chunk = next(queue, None)
                if chunk is None:
                    return
                future = pool.submit(render_chunk, client, storage, _request(project, chunk, start_png),
                                     chunk_key(project, chunk.index))
                in_flight[future] = chunk

        fill()
        while in_flight:
            finished, _ = wait(list(in_flight), timeout=heartbeat, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk = in_flight.pop(future)
                if future.exception() is not None:
                    error = error or future.exception()
                else:
                    frames_done += chunk.frames
                    rendered += chunk.frames
            elapsed = time.monotonic() - started
            extend = time.monotonic() >= next_extend
            if extend:
                next_extend = time.monotonic() + extend_every
            if not _heartbeat(project, frames_done, rendered / elapsed if rendered and elapsed else None, extend):
                stopped = True
            if error is None and not stopped:
                fill()
    if error is not None:
        raise error
    if stopped:
        return "stopped"
    return "complete" if frames_done >= project.frames_total else "continue"


# ------------------------------------------------------------------------------------------- the end

def finish(project_id: int) -> None:
    """Encode the stored chunks into the MP4 and poster, make the library video, settle credits, notify."""
    from app.services import mp4

    project = db.session.get(P, project_id, populate_existing=True)
    if project.hold_id is not None:
        videos.keep_hold(project.hold_id)  # encoding a long video can outlast the last heartbeat's extension
    storage = get_storage()
    chunks = plan_chunks(project)
    frames: list[np.ndarray] = []
    for chunk in chunks:
        frames.extend(_decode_frames(storage.get(chunk_key(project, chunk.index))))
    audio_bytes = None
    if project.audio_id is not None:
        clip = db.session.get(Audio, project.audio_id)
        if clip is None or not clip.storage_key:
            raise RenderFailed("the project's audio clip was deleted")
        audio_bytes = storage.get(clip.storage_key)
    seconds = len(frames) / project.fps
    data = mp4.encode_mp4(frames, project.width, project.height, project.fps, audio_bytes, seconds)
    poster = mp4.poster_png(frames[len(frames) // 2])
    owner = db.session.get(User, project.user_id)
    # Keys follow the project, so a run repeated after a crash overwrites instead of leaving orphans.
    key = f"videos/{owner.public_id}/{project.public_id}.mp4"
    poster_key = f"posters/{owner.public_id}/{project.public_id}.png"
    storage.put(key, data, "video/mp4")
    storage.put(poster_key, poster, "image/png")

    project = db.session.scalar(select(P).where(P.id == project_id).with_for_update()
                                .execution_options(populate_existing=True))
    if project.status != "rendering" or project.video_id is not None:
        db.session.rollback()  # cancelled meanwhile, or another run finished first
        return
    video = Video(user_id=project.user_id, storage_key=key, poster_key=poster_key, mime_type="video/mp4",
                  byte_size=len(data), content_hash=hashlib.sha256(data).hexdigest(),
                  title=project.title or "Music video", duration_seconds=seconds, fps=project.fps,
                  width=project.width, height=project.height, frame_count=len(frames),
                  has_audio=audio_bytes is not None)
    db.session.add(video)
    db.session.flush()
    project.video_id, project.status, project.finished_at = video.id, "ready", utcnow()
    project.frames_done, project.credits_used = project.frames_total, project.credits_quoted
    project.lease_until = None
    db.session.commit()
    videos.settle(project)
    delete_chunks(project)
    _notify_once(project)


def fail(project_id: int, reason: str) -> None:
    """Mark the project failed with the reason, release its credits, tell the owner."""
    db.session.rollback()
    result = db.session.execute(update(P).where(P.id == project_id, P.status.in_(("queued", "rendering")))
                                .values(status="failed", failure_reason=reason[:2000], finished_at=utcnow(),
                                        lease_until=None).execution_options(synchronize_session=False))
    db.session.commit()
    project = db.session.get(P, project_id, populate_existing=True)
    if result.rowcount == 1:
        log.warning("video project %s failed: %s", project_id, reason)
    if project is not None and project.status == "failed":
        videos.settle(project)
        _notify_once(project)


def _notify_once(project: VideoProject) -> None:
    result = db.session.execute(update(P).where(P.id == project.id, P.notified_at.is_(None))
                                .values(notified_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        return
    owner = db.session.get(User, project.user_id)
    base = _settings().base_url.rstrip("/")
    notify.job_finished(owner, "video", project.title or "Music video", project.status == "ready",
                        f"{base}/videos/projects/{project.public_id}", project.failure_reason)
