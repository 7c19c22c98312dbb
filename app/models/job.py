"""Generation jobs (asynchronous requests) and stored responses of idempotent POSTs."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, \
    UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


class GenerationJob(PublicIdMixin, TimestampMixin, Base):
    """One generation asked for with `Prefer: respond-async`: its request, state and result survive the request."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    operation: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(String(12), default="queued", nullable=False)
    params: Mapped[dict] = mapped_column(JSON, nullable=False)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[dict | None] = mapped_column(JSON)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    hold_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("transactions.id", ondelete="SET NULL"))
    request_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotentResponse(TimestampMixin, Base):
    """The first response to a POST with an Idempotency-Key, replayed to retries of the same request."""

    __tablename__ = "idempotent_responses"
    __table_args__ = (UniqueConstraint("user_id", "key", "route", name="uq_idempotent_responses_user_key_route"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    route: Mapped[str] = mapped_column(String(200), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    # Null while the first request is still running.
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
