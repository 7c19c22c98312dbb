"""Fixtures for the media tests: users with API tokens, and images made with Pillow."""
from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image as PILImage

from app.extensions import db
from app.models import ApiToken, User
from app.services.secrets import hash_token


def make_png(width: int = 64, height: int = 48, color=(200, 40, 90), fmt: str = "PNG", **save_args) -> bytes:
    """A small image with a gradient, so it looks generated rather than flat."""
    image = PILImage.new("RGB", (width, height), color)
    for x in range(0, width, 4):
        for y in range(0, height, 4):
            image.putpixel((x, y), ((x * 7) % 256, (y * 5) % 256, (x + y) % 256))
    out = io.BytesIO()
    image.save(out, fmt, **save_args)
    return out.getvalue()


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**overrides): config the test's app starts with")


@pytest.fixture
def settings_overrides(settings_overrides, request):
    """The shared overrides plus those of the test's `settings` marker."""
    marker = request.node.get_closest_marker("settings")
    if marker is not None:
        settings_overrides.update(marker.kwargs)
    return settings_overrides


@pytest.fixture
def make_user(app):
    """Create a user with an API token; returns (user_id, headers)."""

    def create(email: str | None = None, is_admin: bool = False) -> tuple[int, dict[str, str]]:
        token = f"tok-{uuid.uuid4().hex}"
        with app.app_context():
            user = User(email=email or f"{uuid.uuid4().hex[:8]}@example.com", password_hash="x",
                        referral_code=uuid.uuid4().hex[:12], is_verified=True, is_admin=is_admin)
            db.session.add(user)
            db.session.flush()
            db.session.add(ApiToken(user_id=user.id, name="tests", token_hash=hash_token(token), prefix=token[:8]))
            db.session.commit()
            user_id = user.id
        return user_id, {"Authorization": f"Bearer {token}"}

    return create


@pytest.fixture
def store_image(app):
    """Store a generated-looking image for a user through the service the generation endpoints use."""
    from app.services import media

    def store(user_id: int | None, parent_public_id: str | None = None, **params) -> str:
        width, height = params.pop("size", (64, 48))
        with app.app_context():
            user = db.session.get(User, user_id)
            parent = None
            if parent_public_id:
                from sqlalchemy import select

                from app.models import Image

                parent = db.session.scalar(select(Image).where(Image.public_id == uuid.UUID(parent_public_id)))
            image = media.store_generated_image(user, make_png(width, height),
                                                media.ImageParams(parent=parent, **params))
            return str(image.public_id)

    return store
