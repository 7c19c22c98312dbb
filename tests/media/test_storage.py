"""Storage backends: local disk behind signed URLs, and S3 against moto's server over real HTTP."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.services.storage import LocalStorage, S3Storage, check_key


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on a free local port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh bucket on the moto server."""
    name = f"atelier-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=name)
    return name


def _s3(endpoint: str, bucket: str, **extra) -> S3Storage:
    return S3Storage(bucket, "media/", endpoint, "us-east-1", "test", "test", **extra)


def test_local_storage_round_trip_and_delete(tmp_path):
    storage = LocalStorage(str(tmp_path), "secret", "http://atelier.test")
    storage.put("images/u/a.png", b"bytes", "image/png")
    assert storage.exists("images/u/a.png")
    assert storage.get("images/u/a.png") == b"bytes"
    storage.delete("images/u/a.png")
    assert not storage.exists("images/u/a.png")
    storage.delete("images/u/a.png")  # deleting twice is fine
    with pytest.raises(FileNotFoundError):
        storage.get("images/u/a.png")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "a//b", "a\\b", ""])
def test_keys_cannot_escape_the_storage_root(tmp_path, key):
    with pytest.raises(ValueError):
        check_key(key)
    with pytest.raises(ValueError):
        LocalStorage(str(tmp_path), "s", "http://x").put(key, b"x", "text/plain")


def test_local_signed_url_serves_until_it_expires_and_rejects_tampering(app, client):
    storage = app.extensions["storage"]
    storage.put("images/u/private.png", b"\x89PNG private", "image/png")
    url = storage.signed_url("images/u/private.png")
    assert url.startswith("http://atelier.test/api/v1/media/images/u/private.png?")
    path = url[len("http://atelier.test"):]
    response = client.get(path)
    assert response.status_code == 200
    assert response.data == b"\x89PNG private"
    assert response.mimetype == "image/png"

    assert client.get(path.replace("private.png", "other.png")).status_code == 404  # signature is per key
    assert client.get(path[:-4] + "0000").status_code == 404  # tampered signature
    assert client.get("/api/v1/media/images/u/private.png").status_code == 404  # unsigned

    expired = storage.signed_url("images/u/private.png", ttl_seconds=1)
    time.sleep(1.1)
    assert client.get(expired[len("http://atelier.test"):]).status_code == 404


def test_s3_storage_over_http(s3_endpoint, bucket):
    storage = _s3(s3_endpoint, bucket, public_base_url="https://cdn.example.com/")
    storage.put("images/u/a.png", b"png-bytes", "image/png")
    assert storage.exists("images/u/a.png")
    assert storage.get("images/u/a.png") == b"png-bytes"

    # The object really is in the bucket, under the prefix, with its content type.
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    head = raw.head_object(Bucket=bucket, Key="media/images/u/a.png")
    assert head["ContentType"] == "image/png"

    # A presigned URL works over plain HTTP without credentials.
    signed = storage.signed_url("images/u/a.png", ttl_seconds=60)
    assert urlsplit(signed).netloc == urlsplit(s3_endpoint).netloc
    assert "X-Amz-Signature=" in signed
    with urllib.request.urlopen(signed, timeout=10) as response:
        assert response.read() == b"png-bytes"

    assert storage.public_url("images/u/a.png") == "https://cdn.example.com/media/images/u/a.png"

    storage.delete("images/u/a.png")
    assert not storage.exists("images/u/a.png")
    with pytest.raises(FileNotFoundError):
        storage.get("images/u/a.png")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(signed, timeout=10)


def test_s3_without_public_base_has_no_public_url(s3_endpoint, bucket):
    assert _s3(s3_endpoint, bucket).public_url("images/u/a.png") is None


@pytest.fixture
def s3_settings(settings_overrides, s3_endpoint, bucket):
    settings_overrides.update(storage_backend="s3", s3_endpoint_url=s3_endpoint, s3_bucket=bucket,
                              s3_prefix="atelier", s3_access_key_id="test", s3_secret_access_key="test")
    return settings_overrides


def test_app_on_s3_stores_serves_and_deletes_images(s3_settings, s3_endpoint, bucket, app, client, make_user,
                                                    store_image):
    user_id, headers = make_user()
    image_id = store_image(user_id, prompt="a fox")
    raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    keys = sorted(obj["Key"] for obj in raw.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert len(keys) == 2 and all(key.startswith("atelier/") for key in keys)  # image + thumbnail

    body = client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()
    with urllib.request.urlopen(body["url"], timeout=10) as response:  # presigned, straight from S3
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/api/v1/images/{image_id}/thumbnail", headers=headers).mimetype == "image/webp"

    assert client.delete(f"/api/v1/images/{image_id}", headers=headers).status_code == 204
    assert raw.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
