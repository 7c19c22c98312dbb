"""Accounts: users, single-use email tokens and API tokens (only hashes of secrets are stored)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime


class User(PublicIdMixin, TimestampMixin, Base):
    """A person with an account; email is stored trimmed and lower-cased, so it is unique case-insensitively."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    referral_code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    # Bumped on password change/reset so every session issued before it stops working.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notification_webhook_url: Mapped[str | None] = mapped_column(String(2048))
    profile: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)

    api_tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                        passive_deletes=True)

    # Flask-Login protocol, written out so the session id carries the epoch.
    is_active = True
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        """Flask-Login: a loaded user is an authenticated one."""
        return True

    def get_id(self) -> str:
        """Flask-Login: the session id, public id plus session epoch."""
        return f"{self.public_id}:{self.session_epoch}"


class EmailToken(TimestampMixin, Base):
    """A single-use, expiring token sent by email: verify an address, reset a password, change email."""

    __tablename__ = "email_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password', 'change_email')", name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    new_email: Mapped[str | None] = mapped_column(String(320))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ApiToken(PublicIdMixin, TimestampMixin, Base):
    """A bearer token for programmatic use; shown once, stored as a SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="api_tokens")


Index("ix_email_tokens_user_purpose", EmailToken.user_id, EmailToken.purpose)
