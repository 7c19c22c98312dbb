"""The GPU pool: which hosts the proxy spreads work across and which models they may serve."""
from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin


class ApiHost(TimestampMixin, Base):
    """A GPU host (role gpu) the proxy may send requests to."""

    __tablename__ = "api_hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500), unique=True, nullable=False)
    name: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class ModelEntry(TimestampMixin, Base):
    """A model id (tiny, a Hugging Face id or a local path) that GPU hosts may load."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint("kind IN ('image', 'audio')", name="kind"),
        CheckConstraint("price_multiplier > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="image", nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    preload: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    price_multiplier: Mapped[float] = mapped_column(Float, default=1.0, nullable=False)
