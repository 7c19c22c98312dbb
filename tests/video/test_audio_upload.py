"""Audio uploads are checked by decoding: bad files get a clear 4xx and nothing is stored."""
from __future__ import annotations

import io
import os

import av
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Audio
from tests.video.conftest import make_wav, upload_wav

LIMIT = 120_000


@pytest.fixture
def settings_overrides(settings_overrides):
    return {**settings_overrides, "audio_upload_max_bytes": LIMIT, "audio_max_seconds": 5}


def _stored(app, settings_overrides) -> tuple[int, list[str]]:
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(Audio))
    folder = os.path.join(settings_overrides["storage_local_dir"], "audio")
    files = [f for _, _, names in os.walk(folder) for f in names]
    return rows, files


def _flac(wav: bytes) -> bytes:
    out = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source, av.open(out, "w", format="flac") as target:
        stream = target.add_stream("flac", rate=22050, layout="mono")
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


def test_wav_and_flac_uploads_are_measured_with_a_waveform(client, make_user):
    _, headers = make_user()
    wav = make_wav(2.0)
    response = upload_wav(client, headers, wav, "beat.wav")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready" and body["mime_type"] == "audio/wav"
    assert body["duration"] == pytest.approx(2.0, abs=0.01) and body["sample_rate"] == 22050
    assert len(body["waveform"]) == 200 and max(body["waveform"]) > 0.5  # the clicks show as peaks

    flac = upload_wav(client, headers, _flac(wav), "beat.flac")
    assert flac.status_code == 201 and flac.get_json()["mime_type"] == "audio/flac"
    assert flac.get_json()["duration"] == pytest.approx(2.0, abs=0.05)

    played = client.get(body["url"], headers=headers)
    assert played.status_code == 200 and played.data == wav
    ranged = client.get(body["url"], headers={**headers, "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100

    listed = client.get("/api/v1/audio", headers=headers).get_json()["audio"]
    assert [a["id"] for a in listed] == [flac.get_json()["id"], body["id"]]
    assert client.delete(f"/api/v1/audio/{body['id']}", headers=headers).status_code == 204
    assert client.get(body["url"], headers=headers).status_code == 404


@pytest.mark.parametrize("name, data, status, words", [
    ("notes.mp3", b"this is a text file, not an mp3\n" * 20, 422, "not a usable audio file"),
    ("empty.mp3", b"", 422, "empty"),
    ("huge.wav", make_wav(3.0, rate=22050), 413, "larger than"),
    ("long.wav", make_wav(6.0, rate=4000), 422, "longer than 5"),
])
def test_bad_audio_is_refused_and_nothing_is_stored(app, client, make_user, settings_overrides, name, data, status,
                                                    words):
    _, headers = make_user()
    response = upload_wav(client, headers, data, name)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert words in error["message"]
    assert _stored(app, settings_overrides) == (0, [])


def test_others_cannot_play_or_delete_my_audio(client, make_user):
    _, mine = make_user()
    _, theirs = make_user()
    clip = upload_wav(client, mine, make_wav(1.0)).get_json()
    assert client.get(clip["url"], headers=theirs).status_code == 404
    assert client.delete(f"/api/v1/audio/{clip['id']}", headers=theirs).status_code == 404
    assert client.get(clip["url"], headers=mine).status_code == 200
