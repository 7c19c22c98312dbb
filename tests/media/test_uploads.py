"""Uploads: content decides the format, sizes and pixel counts are limited before decoding, EXIF is stripped."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from flask_wtf.csrf import generate_csrf
from PIL import Image as PILImage
from PIL import ImageFile

from app.extensions import db
from app.models import Image, User

from .conftest import make_png


def _upload(client, headers, data: bytes, filename: str = "photo.png", **extra):
    return client.post("/api/v1/images/uploads", headers=headers,
                       data={"image": (io.BytesIO(data), filename), **extra}, content_type="multipart/form-data")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def decompression_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side pixels whose zero-filled data compresses to a few dozen KB."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def test_png_upload_is_stored_as_an_upload_in_my_library(app, client, make_user):
    user_id, headers = make_user()
    response = _upload(client, headers, make_png(80, 60), title="my sketch")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["kind"], body["width"], body["height"], body["title"]) == ("upload", 80, 60, "my sketch")
    assert body["mime_type"] == "image/png" and len(body["content_hash"]) == 64
    listed = client.get("/api/v1/images?kind=upload", headers=headers).get_json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]


@pytest.mark.parametrize("fmt,mime", [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_jpeg_and_webp_are_accepted_whatever_the_name(client, make_user, fmt, mime):
    _, headers = make_user()
    response = _upload(client, headers, make_png(50, 40, fmt=fmt), filename="renamed.png")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["mime_type"] == mime
    served = client.get(f"/api/v1/images/{body['id']}/file", headers=headers)
    assert served.mimetype == mime
    assert PILImage.open(io.BytesIO(served.data)).format == fmt


def test_text_file_named_png_is_refused_with_422_and_nothing_stored(app, client, make_user, settings_overrides):
    _, headers = make_user()
    response = _upload(client, headers, b"this is not an image at all\n" * 10, filename="cat.png")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unsupported_image"
    with app.app_context():
        assert db.session.query(Image).count() == 0


def test_truncated_png_is_refused_with_422(client, make_user):
    _, headers = make_user()
    data = make_png(64, 64)
    response = _upload(client, headers, data[: len(data) // 2])
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unsupported_image"


def test_gif_is_refused_even_though_pillow_reads_it(client, make_user):
    _, headers = make_user()
    assert _upload(client, headers, make_png(10, 10, fmt="GIF"), filename="x.png").status_code == 422


@pytest.mark.settings(upload_max_bytes=20_000)
def test_upload_over_the_size_limit_is_413(client, make_user):
    _, headers = make_user()
    big = make_png(400, 400, fmt="PNG", compress_level=0)  # ~480 KB uncompressed
    response = _upload(client, headers, big)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.settings(upload_max_bytes=64 * 64 * 3)
def test_upload_just_over_the_limit_without_content_length_slack_is_413(client, make_user):
    data = make_png(64, 64, compress_level=0)
    assert 64 * 64 * 3 < len(data) < 64 * 64 * 3 + 1000  # within the multipart slack, caught after reading
    _, headers = make_user()
    assert _upload(client, headers, data).status_code == 413


def test_decompression_bomb_is_refused_from_its_header(app, client, make_user, monkeypatch):
    bomb = decompression_bomb()
    assert len(bomb) < 100_000  # tiny on the wire, 400 million pixels when decoded
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    _, headers = make_user()
    assert _upload(client, headers, make_png(8, 8)).status_code == 201
    assert (8, 8) in decoded  # the spy sees ordinary decodes
    decoded.clear()
    response = _upload(client, headers, bomb)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "image_too_large"
    assert decoded == []  # refused before any pixel was decoded
    with app.app_context():
        assert db.session.query(Image).count() == 1  # only the small one


@pytest.mark.settings(upload_max_pixels=100 * 100)
def test_pixel_limit_is_configurable(client, make_user):
    _, headers = make_user()
    assert _upload(client, headers, make_png(100, 100)).status_code == 201
    assert _upload(client, headers, make_png(101, 100)).status_code == 413


def test_exif_is_stripped_and_orientation_applied(client, make_user):
    exif = PILImage.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    original = make_png(40, 20, fmt="JPEG", exif=exif.tobytes())
    assert b"SecretCam" in original
    _, headers = make_user()
    body = _upload(client, headers, original, filename="phone.jpg").get_json()
    assert (body["width"], body["height"]) == (20, 40)
    stored = client.get(f"/api/v1/images/{body['id']}/file", headers=headers).data
    assert b"SecretCam" not in stored and b"Exif" not in stored
    assert dict(PILImage.open(io.BytesIO(stored)).getexif()) == {}


def test_missing_field_and_anonymous_uploads_are_refused(client, make_user):
    _, headers = make_user()
    response = client.post("/api/v1/images/uploads", headers=headers, data={"file": (io.BytesIO(b"x"), "a.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "image"
    assert _upload(client, {}, make_png()).status_code == 401


def test_cookie_sessions_need_the_csrf_header(app, client, make_user):
    user_id, _ = make_user()
    app.add_url_rule("/_test/csrf", "test_csrf", lambda: generate_csrf())
    with app.app_context():
        session_id = db.session.get(User, user_id).get_id()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    refused = _upload(client, {}, make_png())
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    assert _upload(client, {"X-CSRFToken": "forged"}, make_png()).status_code == 403
    token = client.get("/_test/csrf").get_data(as_text=True)
    assert _upload(client, {"X-CSRFToken": token}, make_png()).status_code == 201
