"""Image bytes: checking what a file really is, stripping metadata, thumbnails and hashes (Pillow only)."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import ApiError

THUMBNAIL_SIDE = 256
# Pillow format name → (mime type, file extension).
ACCEPTED_FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}


@dataclass(frozen=True)
class EncodedImage:
    """Bytes ready to store, with what we know about them."""

    data: bytes
    mime_type: str
    extension: str
    width: int
    height: int
    content_hash: str


def set_pixel_limit(max_pixels: int) -> None:
    """Make Pillow itself refuse decompression bombs (it warns above the limit and refuses above twice it).

    Our own header check in _open_header refuses anything above the configured limit first, without
    touching the process-wide warning filters (which are not thread-safe).
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


def _open_header(data: bytes, max_pixels: int, formats: tuple[str, ...]) -> Image.Image:
    """Open lazily (header only) and refuse unknown formats and oversized dimensions before decoding pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:
        raise ApiError(413, f"The image has more than {max_pixels} pixels.", code="image_too_large") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(422, "The file is not a PNG, JPEG or WebP image.", code="unsupported_image",
                       field="image") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise ApiError(413, f"The image is {width}x{height}; at most {max_pixels} pixels are accepted.",
                       code="image_too_large")
    return image


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ApiError(422, "The image is damaged or truncated.", code="unsupported_image", field="image") from None
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=95, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=95, method=4)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _normalized_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    has_alpha = image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def sanitize_upload(data: bytes, max_pixels: int) -> EncodedImage:
    """Check an upload by its content, then re-encode it in its own format without EXIF or other metadata."""
    image = _open_header(data, max_pixels, tuple(ACCEPTED_FORMATS))
    fmt = image.format or "PNG"
    # Apply the EXIF orientation to the pixels, since the tag that said how to rotate is dropped with the rest.
    decoded = ImageOps.exif_transpose(_decode(image))
    clean = _normalized_mode(decoded)
    mime_type, extension = ACCEPTED_FORMATS[fmt]
    encoded = _encode(clean, fmt)
    return EncodedImage(encoded, mime_type, extension, clean.width, clean.height, sha256(encoded))


def inspect_png(data: bytes, max_pixels: int) -> EncodedImage:
    """Check generated PNG bytes and describe them as they are (they are stored unchanged)."""
    image = _decode(_open_header(data, max_pixels, ("PNG",)))
    return EncodedImage(data, "image/png", "png", image.width, image.height, sha256(data))


def make_thumbnail(data: bytes) -> EncodedImage:
    """A WebP thumbnail whose longest side is at most 256 pixels."""
    image = _normalized_mode(Image.open(io.BytesIO(data)))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # method=0 is libwebp's fastest effort: 3-5x quicker than the default at about the same size for thumbnails,
    # and it runs on every generation's critical path.
    image.save(out, "WEBP", quality=80, method=0)
    encoded = out.getvalue()
    return EncodedImage(encoded, "image/webp", "webp", image.width, image.height, sha256(encoded))


def sha256(data: bytes) -> str:
    """Hex SHA-256 of the bytes."""
    return hashlib.sha256(data).hexdigest()
