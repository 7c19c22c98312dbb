"""Audio clips API: list, upload, generate (text-to-music, continuation), play, delete."""
from __future__ import annotations

import io

from flask import Blueprint, current_app, request, send_file
from flask_login import current_user

from app.auth import api_login_required
from app.errors import ApiError
from app.models import Audio
from app.routes.api_common import json_body, read_upload
from app.services import audio

bp = Blueprint("audio_api", __name__, url_prefix="/api/v1/audio")


def audio_json(row: Audio) -> dict:
    """One clip as clients see it."""
    return {
        "id": str(row.public_id), "kind": row.kind, "status": row.status, "failure_reason": row.failure_reason,
        "title": row.title, "prompt": row.prompt, "model": row.model_id, "seed": row.seed,
        "duration": row.duration_seconds, "sample_rate": row.sample_rate, "mime_type": row.mime_type,
        "byte_size": row.byte_size, "waveform": row.waveform,
        "url": f"/api/v1/audio/{row.public_id}/file" if row.status == "ready" else None,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


@bp.get("")
@api_login_required
def list_audio():
    """My clips, newest first."""
    return {"audio": [audio_json(row) for row in audio.list_audio(current_user)]}


@bp.post("/uploads")
@api_login_required
def upload():
    """Upload a WAV, MP3, OGG or FLAC (multipart field 'audio'); checked by decoding it."""
    data, filename = read_upload("audio", current_app.config["ATELIER"].audio_upload_max_bytes, "audio file")
    title = (request.form.get("title") or filename or "").strip()[:200] or None
    if title and "\x00" in title:  # PostgreSQL text cannot hold NUL
        raise ApiError(422, "'title' must not contain NUL characters.", field="title")
    return audio_json(audio.store_upload(current_user, data, title)), 201


@bp.post("/generations")
@api_login_required
def generate():
    """Queue text-to-music, or a continuation with continue_from; credits are held now."""
    return audio_json(audio.submit_generation(current_user, json_body())), 202


@bp.get("/<public_id>")
@api_login_required
def get_audio(public_id: str):
    """One of my clips with its state."""
    return audio_json(audio.find_audio(current_user, public_id))


@bp.get("/<public_id>/file")
@api_login_required
def audio_file(public_id: str):
    """The clip's bytes (range requests work, so players can seek)."""
    data, mime_type = audio.read_file(audio.find_audio(current_user, public_id))
    return send_file(io.BytesIO(data), mimetype=mime_type, conditional=True, max_age=0)


@bp.delete("/<public_id>")
@api_login_required
def delete(public_id: str):
    """Delete one of my clips."""
    audio.delete_audio(current_user, public_id)
    return "", 204
