"""The credit ledger: one append-only table of entries (grants, spends, holds and their settlements)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        text)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, PublicIdMixin, TimestampMixin, UTCDateTime

# Entries that add credits carry an expiry and an amount remaining.
CREDIT_KINDS = ("signup_bonus", "grant", "referral_reward", "purchase")
# Entries that take credits away or reserve them.
DEBIT_KINDS = ("spend", "hold", "capture", "release", "expire")
ENTRY_KINDS = CREDIT_KINDS + DEBIT_KINDS
_IS_CREDIT = "kind IN (" + ", ".join(f"'{k}'" for k in CREDIT_KINDS) + ")"


class Transaction(PublicIdMixin, TimestampMixin, Base):
    """One ledger entry; rows are never deleted, only `remaining` and a hold's `status` change."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in ENTRY_KINDS) + ")", name="kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # Exactly the credit entries carry a remaining amount, exactly the holds carry a status.
        CheckConstraint("(remaining IS NOT NULL) = (kind IN (" + ", ".join(f"'{k}'" for k in CREDIT_KINDS) + "))",
                        name="remaining_on_credits"),
        CheckConstraint("(status IS NOT NULL) = (kind = 'hold')", name="status_on_holds"),
        CheckConstraint("remaining IS NULL OR remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("remaining IS NULL OR remaining <= amount", name="remaining_within_amount"),
        CheckConstraint("status IS NULL OR status IN ('active', 'captured', 'released')", name="status"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_transactions_user_idempotency_key"),
        UniqueConstraint("reward_id", "referral_id", "user_id", name="uq_transactions_reward_referral_user"),
        Index("ix_transactions_user_created", "user_id", "created_at"),
        # Partial indexes over the few rows the hot paths look for (credit entries, active holds), so spending
        # never scans a long ledger and debit rows add nothing to them. The predicates name `kind`, which never
        # changes, and not `remaining`, so drawing from a grant stays a HOT update that rewrites no index.
        Index("ix_transactions_credits", "user_id", "expires_at",
              postgresql_where=text(_IS_CREDIT), sqlite_where=text(_IS_CREDIT)),
        Index("ix_transactions_credit_expiry", "expires_at",
              postgresql_where=text(_IS_CREDIT), sqlite_where=text(_IS_CREDIT)),
        Index("ix_transactions_active_holds", "created_at",
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
    )

    # BIGINT on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    # Credits: positive for entries that add credits, the size of the debit or reservation otherwise.
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    remaining: Mapped[int | None] = mapped_column(BigInteger)
    # Credit entries: when what remains expires. Holds: the deadline after which the sweeper releases them.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str | None] = mapped_column(String(10))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="CASCADE"), index=True)
    # Which credit entries a debit drew from: [{"entry": id, "amount": n}, ...].
    allocations: Mapped[list | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("rewards.id", ondelete="SET NULL"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"))
    memo: Mapped[str | None] = mapped_column(Text)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
