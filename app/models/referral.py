"""Referrals (who invited whom) and declarative reward rules (never SQL text)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UTCDateTime

REWARD_TRIGGERS = ("verified", "first_generation", "first_purchase")
REWARD_BENEFICIARIES = ("referrer", "referred", "both")


class Referral(TimestampMixin, Base):
    """A referred user and the one user who referred them."""

    __tablename__ = "referrals"
    __table_args__ = (CheckConstraint("referrer_id <> referred_id", name="not_self"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    referred_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False)
    code_used: Mapped[str] = mapped_column(String(32), nullable=False)
    # When the referred user first did what a reward may wait for; set once, read by `flask rewards run`.
    first_generation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reward(TimestampMixin, Base):
    """A reward rule: on a trigger, grant an amount to the referrer, the referred user, or both."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("trigger IN (" + ", ".join(f"'{t}'" for t in REWARD_TRIGGERS) + ")", name="trigger"),
        CheckConstraint("beneficiary IN (" + ", ".join(f"'{b}'" for b in REWARD_BENEFICIARIES) + ")",
                        name="beneficiary"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    beneficiary: Mapped[str] = mapped_column(String(10), nullable=False)
    expires_in_days: Mapped[int | None] = mapped_column(Integer)
    cap_per_referrer: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
