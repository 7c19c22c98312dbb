"""Media: images, audio, videos, music-video projects and share links. Bytes live in storage, never in rows."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String,
                        Text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime

IMAGE_KINDS = ("txt2img", "img2img", "inpaint", "instruct", "upscale", "variation", "upload", "template", "frame")
JOB_STATES = ("queued", "processing", "ready", "failed", "cancelled")
PROJECT_STATES = ("draft", "queued", "rendering", "ready", "failed", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class StoredFileMixin:
    """Where a file's bytes live and what they are."""

    storage_key: Mapped[str | None] = mapped_column(String(512))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(200))
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_liked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Image(PublicIdMixin, TimestampMixin, StoredFileMixin, Base):
    """A generated, uploaded or template image with its thumbnail and generation parameters."""

    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(_in("kind", IMAGE_KINDS), name="kind"),
        Index("ix_images_user_created", "user_id", "created_at"),
        Index("ix_images_public_published", "is_public", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Templates published by admins belong to no user.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    steps: Mapped[int | None] = mapped_column(Integer)
    guidance: Mapped[float | None] = mapped_column(Float)
    scheduler: Mapped[str | None] = mapped_column(String(50))
    model_id: Mapped[str | None] = mapped_column(String(200))
    strength: Mapped[float | None] = mapped_column(Float)
    is_template: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    parent: Mapped["Image | None"] = relationship(remote_side="Image.id", back_populates="children")
    children: Mapped[list["Image"]] = relationship(back_populates="parent")


class Audio(PublicIdMixin, TimestampMixin, StoredFileMixin, Base):
    """An uploaded or generated audio clip; generated clips move queued → processing → ready/failed."""

    __tablename__ = "audio"
    __table_args__ = (
        CheckConstraint(_in("kind", ("upload", "generated", "continuation")), name="kind"),
        CheckConstraint(_in("status", JOB_STATES), name="status"),
        Index("ix_audio_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("audio.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(12), default="ready", nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    waveform: Mapped[list | None] = mapped_column(JSON)
    prompt: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[str | None] = mapped_column(String(200))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Task runs that started; a run that dies (killed worker) leaves it counted, a poison job hits the cap.
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Video(PublicIdMixin, TimestampMixin, StoredFileMixin, Base):
    """A rendered MP4 with its poster image."""

    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    poster_key: Mapped[str | None] = mapped_column(String(512))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class VideoProject(PublicIdMixin, TimestampMixin, Base):
    """A music video or interpolation video to render: audio, timed prompts, settings, state and progress."""

    __tablename__ = "video_projects"
    __table_args__ = (
        CheckConstraint(_in("kind", ("music", "interpolation")), name="kind"),
        CheckConstraint(_in("status", PROJECT_STATES), name="status"),
        CheckConstraint("frames_done >= 0 AND frames_done <= frames_total", name="progress"),
        Index("ix_video_projects_user_created", "user_id", "created_at"),
        Index("ix_video_projects_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    audio_id: Mapped[int | None] = mapped_column(ForeignKey("audio.id", ondelete="SET NULL"))
    video_id: Mapped[int | None] = mapped_column(ForeignKey("videos.id", ondelete="SET NULL"))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="SET NULL"))
    # The walk starts from this library image (img2img-style) instead of the first prompt's seed.
    start_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    start_strength: Mapped[float | None] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(20), default="music", nullable=False)
    title: Mapped[str | None] = mapped_column(String(200))
    # [{"at": seconds, "prompt": str, "seed": int}, ...]
    prompts: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    steps: Mapped[int] = mapped_column(Integer, nullable=False)
    fps: Mapped[int] = mapped_column(Integer, nullable=False)
    guidance: Mapped[float] = mapped_column(Float, default=7.5, nullable=False)
    smooth: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    scheduler: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(12), default="draft", nullable=False)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    frames_total: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    frames_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Frame index → [segment, t], fixed when the render is submitted so a resumed render draws the same frames.
    schedule: Mapped[list | None] = mapped_column(JSON)
    chunk_frames: Mapped[int | None] = mapped_column(Integer)
    credits_quoted: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    credits_used: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    render_fps: Mapped[float | None] = mapped_column(Float)
    # Runs that started without finishing normally in a row; the cap ends a poison job as failed.
    render_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # One render at a time per project: a run holds the lease and renews it while it works.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Link(TimestampMixin, Base):
    """A share link to exactly one image, audio clip or video; revoking it makes the page 404."""

    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint(
            "(CASE WHEN image_id IS NULL THEN 0 ELSE 1 END + CASE WHEN audio_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN video_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The token is the share secret in the URL; it grants view access to one item only.
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    audio_id: Mapped[int | None] = mapped_column(ForeignKey("audio.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[int | None] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    views: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
