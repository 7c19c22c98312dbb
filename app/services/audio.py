"""Audio clips: uploads checked by decoding, text-to-music and continuations generated on the GPU hosts."""
from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from datetime import timedelta

import numpy as np
from flask import current_app
from sqlalchemy import select, update

from app.errors import ApiError
from app.extensions import db
from app.models import Audio, User, utcnow
from app.services import audio_codec, credits, notify, pricing
from app.services.storage import get_storage

log = logging.getLogger(__name__)
EXTENSIONS = {"audio/wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/flac": "flac"}
MAX_GENERATE_SECONDS = 60


class PoolUnavailable(RuntimeError):
    """The GPU pool stayed busy or unreachable; the task retries with backoff."""


def _settings():
    return current_app.config["ATELIER"]


def _uuid(public_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(public_id))
    except ValueError:
        raise ApiError(404, "No such audio clip.") from None


def _store(user: User, data: bytes, mime_type: str, row: Audio) -> None:
    key = f"audio/{user.public_id}/{row.public_id}.{EXTENSIONS[mime_type]}"
    get_storage().put(key, data, mime_type)
    row.storage_key, row.mime_type, row.byte_size = key, mime_type, len(data)
    row.content_hash = hashlib.sha256(data).hexdigest()


def store_upload(user: User, data: bytes, title: str | None = None) -> Audio:
    """Store an uploaded WAV/MP3/OGG/FLAC after decoding it fully: 413 over the size limit, 422 if not audio."""
    settings = _settings()
    if len(data) > settings.audio_upload_max_bytes:
        raise ApiError(413, f"The audio file is larger than {settings.audio_upload_max_bytes} bytes.")
    try:
        decoded = audio_codec.decode(data, max_seconds=settings.audio_max_seconds)
    except audio_codec.AudioDecodeError as exc:
        raise ApiError(422, f"This is not a usable audio file: {exc}.", field="audio") from exc
    if decoded.duration > settings.audio_max_seconds:
        raise ApiError(422, f"The audio is longer than {settings.audio_max_seconds} seconds.", field="audio")
    row = Audio(public_id=uuid.uuid4(), user_id=user.id, kind="upload", status="ready", title=title,
                duration_seconds=round(decoded.duration, 3), sample_rate=decoded.sample_rate,
                waveform=audio_codec.waveform(decoded.samples), finished_at=utcnow(), attempts=0)
    _store(user, data, decoded.mime_type, row)
    try:
        db.session.add(row)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        get_storage().delete(row.storage_key)
        raise
    return row


def list_audio(user: User) -> list[Audio]:
    """The user's clips, newest first."""
    return list(db.session.scalars(select(Audio).where(Audio.user_id == user.id)
                                   .order_by(Audio.created_at.desc(), Audio.id.desc())))


def find_audio(user: User, public_id: str) -> Audio:
    """The user's own clip; 404 for anyone else's."""
    row = db.session.scalar(select(Audio).where(Audio.public_id == _uuid(public_id), Audio.user_id == user.id))
    if row is None:
        raise ApiError(404, "No such audio clip.")
    return row


def read_file(row: Audio) -> tuple[bytes, str]:
    """The clip's bytes and MIME type."""
    if not row.storage_key:
        raise ApiError(404, "This audio clip has no file yet.")
    try:
        return get_storage().get(row.storage_key), row.mime_type or "audio/wav"
    except FileNotFoundError:
        raise ApiError(404, "This audio clip's file is missing from storage.") from None


def load_samples(row: Audio, rate: int) -> np.ndarray:
    """The clip as mono float32 samples at `rate`."""
    data, _ = read_file(row)
    return audio_codec.decode(data, rate=rate).samples


def delete_audio(user: User, public_id: str) -> None:
    """Delete a clip and its file (projects using it keep their rendered videos)."""
    row = find_audio(user, public_id)
    if row.status in ("queued", "processing"):
        raise ApiError(409, "The clip is still being generated.", code="audio_busy")
    key = row.storage_key
    db.session.delete(row)
    db.session.commit()
    if key:
        try:
            get_storage().delete(key)
        except Exception:
            log.exception("could not delete %s", key)


# ------------------------------------------------------------------------------------------ generation

def submit_generation(user: User, data: dict) -> Audio:
    """Queue text-to-music (or a continuation of `continue_from`): the quoted seconds are held at once."""
    settings = _settings()
    prompt = data.get("prompt")
    if (not isinstance(prompt, str) or not prompt.strip() or len(prompt) > settings.gpu_max_prompt_chars
            or "\x00" in prompt):  # PostgreSQL text cannot hold NUL
        raise ApiError(422, f"'prompt' must be text of 1 to {settings.gpu_max_prompt_chars} characters.",
                       field="prompt")
    prompt = prompt.strip()
    seconds = data.get("duration", settings.audio_gen_duration)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= min(
            MAX_GENERATE_SECONDS, settings.audio_max_seconds):
        raise ApiError(422, f"'duration' must be a number of seconds in (0, {MAX_GENERATE_SECONDS}].",
                       field="duration")
    model = data.get("model", settings.gpu_models[0] if settings.gpu_models else "tiny")
    if not isinstance(model, str) or "\x00" in model:
        raise ApiError(422, "'model' must be a model id.", field="model")
    title = data.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 200 or "\x00" in title):
        raise ApiError(422, "'title' must be text of at most 200 characters.", field="title")
    seed = data.get("seed", int.from_bytes(uuid.uuid4().bytes[:4], "big"))
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ApiError(422, "'seed' must be a whole number ≥ 0.", field="seed")
    parent = None
    if data.get("continue_from") is not None:
        parent = find_audio(user, data["continue_from"])
        if parent.status != "ready":
            raise ApiError(409, "That clip is not ready yet.", code="audio_not_ready")
    cost = pricing.audio_cost(model, seconds)
    entry = credits.hold(user, cost, idempotency_key=f"audio-{uuid.uuid4().hex}", memo="audio generation")
    row = Audio(public_id=uuid.uuid4(), user_id=user.id, kind="continuation" if parent else "generated",
                parent_id=parent.id if parent else None, status="queued", prompt=prompt, model_id=model, seed=seed,
                duration_seconds=float(seconds), hold_id=entry.id, attempts=0,
                title=(title or "").strip() or prompt[:200])
    try:
        db.session.add(row)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        credits.release(entry.id)
        raise
    from app.tasks.media import generate_audio

    generate_audio.delay(row.id)
    return row


def generate(audio_id: int) -> str:
    """The task body: ask the GPU pool for the clip, store it, capture credits per second delivered."""
    from app.services.gpu_client import client_from_settings

    settings = _settings()
    result = db.session.execute(update(Audio).where(Audio.id == audio_id, Audio.status.in_(("queued", "processing")))
                                .values(status="processing", attempts=Audio.attempts + 1)
                                .execution_options(synchronize_session=False))
    db.session.commit()
    row = db.session.get(Audio, audio_id, populate_existing=True)
    if row is None or result.rowcount != 1:
        return "stopped"
    if row.attempts > settings.celery_max_redeliveries + 1:
        fail(audio_id, f"generation died {row.attempts - 1} times; giving up")
        return "stopped"
    if row.hold_id is not None:
        # The clip may have waited in the queue; its hold must outlive the GPU request that starts now.
        credits.extend_hold(row.hold_id, utcnow() + timedelta(minutes=settings.hold_timeout_minutes,
                                                              seconds=settings.gpu_request_timeout_seconds))
    payload = {"model": row.model_id, "prompt": row.prompt, "seconds": row.duration_seconds, "seed": row.seed}
    if row.parent_id is not None:
        parent = db.session.get(Audio, row.parent_id)
        if parent is None:
            fail(audio_id, "the clip to continue was deleted")
            return "stopped"
        samples = load_samples(parent, 32000)[-32000 * 10:]
        payload["audio_wav_base64"] = base64.b64encode(audio_codec.encode_wav(samples, 32000)).decode()
    try:
        answer = client_from_settings(settings).request("POST", "/gpu/v1/audio", payload)
    except ApiError as exc:
        if exc.status in (502, 503, 504):
            db.session.execute(update(Audio).where(Audio.id == audio_id).values(attempts=0))
            db.session.commit()
            raise PoolUnavailable(exc.message) from exc
        fail(audio_id, f"the GPU refused the request: {exc.message}")
        return "stopped"
    data = base64.b64decode(answer["wav_base64"])
    decoded = audio_codec.decode(data)
    delivered = float(answer.get("seconds") or decoded.duration)
    row = db.session.get(Audio, audio_id, populate_existing=True)
    if row.parent_id is not None:
        # A continuation is the parent followed by the new music, as one clip.
        before = load_samples(db.session.get(Audio, row.parent_id), decoded.sample_rate)
        decoded.samples = np.concatenate([before, decoded.samples])
        data = audio_codec.encode_wav(decoded.samples, decoded.sample_rate)
    owner = db.session.get(User, row.user_id)
    _store(owner, data, "audio/wav", row)
    row.status, row.finished_at = "ready", utcnow()
    row.duration_seconds, row.sample_rate = round(decoded.duration, 3), decoded.sample_rate
    row.waveform = audio_codec.waveform(decoded.samples)
    db.session.commit()
    hold = row.hold_id
    if hold is not None:
        amount = min(pricing.audio_cost(row.model_id, round(delivered, 3)), _hold_amount(hold))
        credits.capture(hold, amount, idempotency_key=f"audio-settle-{hold}", memo="audio generation")
    _notify_once(row)
    return "done"


def _hold_amount(hold_id: int) -> int:
    from app.models import Transaction

    return db.session.get(Transaction, hold_id).amount


def fail(audio_id: int, reason: str) -> None:
    """Mark the clip failed with the reason and release its credits."""
    db.session.rollback()
    db.session.execute(update(Audio).where(Audio.id == audio_id, Audio.status.in_(("queued", "processing")))
                       .values(status="failed", failure_reason=reason[:2000], finished_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    row = db.session.get(Audio, audio_id, populate_existing=True)
    if row is not None and row.status == "failed":
        if row.hold_id is not None:
            credits.capture(row.hold_id, 0, idempotency_key=f"audio-settle-{row.hold_id}")
        _notify_once(row)


def _notify_once(row: Audio) -> None:
    result = db.session.execute(update(Audio).where(Audio.id == row.id, Audio.notified_at.is_(None))
                                .values(notified_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount == 1:
        owner = db.session.get(User, row.user_id)
        base = _settings().base_url.rstrip("/")
        notify.job_finished(owner, "audio", row.title or "Audio", row.status == "ready",
                            f"{base}/audio/{row.public_id}", row.failure_reason)
