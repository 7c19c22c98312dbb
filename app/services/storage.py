"""Where media bytes live: local disk or any S3-compatible service, behind one small interface."""
from __future__ import annotations

import hashlib
import hmac
import os
import posixpath
import tempfile
import time
from typing import Protocol
from urllib.parse import quote, urlencode

from flask import Flask, current_app

from app.config import Settings

# The app route that serves local files behind a signed, expiring URL (see app/routes/media_api.py).
SIGNED_ROUTE = "/api/v1/media/"


class StorageError(RuntimeError):
    """The backend could not store, read or delete an object."""


class Storage(Protocol):
    """What every backend offers; keys are relative paths such as 'images/<user>/<id>.png'."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def signed_url(self, key: str, ttl_seconds: int | None = None) -> str: ...

    def public_url(self, key: str) -> str | None: ...


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage root or the bucket prefix."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid storage key {key!r}")
    normalized = posixpath.normpath(key)
    if normalized != key or normalized.startswith("..") or "/../" in f"/{normalized}/":
        raise ValueError(f"invalid storage key {key!r}")
    return key


def _signature(secret: str, key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class LocalStorage:
    """Files under one folder; private files are served by an app route behind HMAC-signed, expiring URLs."""

    def __init__(self, root: str, secret: str, base_url: str, ttl_seconds: int = 900):
        self.root = os.path.abspath(root)
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the bytes atomically (temp file + rename), so a reader never sees half a file."""
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temp_path = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temp_path, path)
        except OSError as exc:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        """The stored bytes; FileNotFoundError when the key is absent."""
        with open(self._path(key), "rb") as handle:
            return handle.read()

    def delete(self, key: str) -> None:
        """Remove the object; deleting an absent key is not an error."""
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        """True when the key holds bytes."""
        return os.path.isfile(self._path(key))

    def signed_url(self, key: str, ttl_seconds: int | None = None) -> str:
        """An absolute URL to the app's file route, valid until it expires."""
        expires = int(time.time()) + (ttl_seconds or self.ttl_seconds)
        query = urlencode({"expires": expires, "signature": _signature(self.secret, check_key(key), expires)})
        return f"{self.base_url}{SIGNED_ROUTE}{quote(key)}?{query}"

    def verify(self, key: str, expires: str | None, signature: str | None) -> bool:
        """True when a signed URL's expiry and signature are good for this key."""
        try:
            expires_at = int(expires or "")
            check_key(key)
        except ValueError:
            return False
        if expires_at < time.time() or not signature:
            return False
        return hmac.compare_digest(_signature(self.secret, key, expires_at), signature)

    def public_url(self, key: str) -> str | None:
        """Local disk has no public host; published media are served by the app's stable routes instead."""
        return None


class S3Storage:
    """Objects in an S3-compatible bucket; private media get presigned URLs, published ones the public base URL."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 public_base_url: str | None = None, ttl_seconds: int = 900):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.ttl_seconds = ttl_seconds
        # Path-style addressing works with every S3-compatible server (MinIO, Ceph, moto); AWS accepts it too.
        config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "auto"},
                        retries={"max_attempts": 3, "mode": "standard"})
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                   config=config)

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload the object with its content type."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot store {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when the key is absent."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            raise StorageError(f"cannot read {key}: {exc}") from exc
        return response["Body"].read()

    def delete(self, key: str) -> None:
        """Remove the object; S3 treats deleting an absent key as success."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot delete {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        """True when the object exists (a HEAD request)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"cannot check {key}: {exc}") from exc
        return True

    def signed_url(self, key: str, ttl_seconds: int | None = None) -> str:
        """A presigned GET URL that expires."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=ttl_seconds or self.ttl_seconds)

    def public_url(self, key: str) -> str | None:
        """The stable public/CDN URL, when one is configured."""
        if not self.public_base_url:
            return None
        return f"{self.public_base_url}/{quote(self._key(key))}"


def build_storage(settings: Settings) -> Storage:
    """The backend the configuration asks for."""
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:
            raise StorageError("storage_backend is 's3' but s3_bucket is not set")
        return S3Storage(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region,
                         settings.s3_access_key_id, settings.s3_secret_access_key, settings.s3_public_base_url,
                         settings.media_url_ttl_seconds)
    return LocalStorage(settings.storage_local_dir, settings.secret_key or "", settings.base_url,
                        settings.media_url_ttl_seconds)


def init_app(app: Flask) -> None:
    """Choose the backend from config and keep it on the app."""
    app.extensions["storage"] = build_storage(app.config["ATELIER"])


def get_storage() -> Storage:
    """The current app's storage backend."""
    return current_app.extensions["storage"]
